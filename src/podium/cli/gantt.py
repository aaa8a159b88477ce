"""Gantt charts as self-contained HTML pages (inline SVG, no external assets).

One renderer for every chart Podium draws: planned schedules (``podium plan --html``) and
what a run really did (``podium run --gantt``, ``podium show --gantt``). Invariants: the page
needs nothing but a browser; task names are HTML-escaped; lanes are nodes (or node slots).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from podium.model import states as st

_COLORS = {
    st.SUCCEEDED: "#4c9f70",
    st.FAILED: "#d9534f",
    st.CANCELLED: "#f0ad4e",
    st.RUNNING: "#5bc0de",
    "planned": "#5b8def",
    "retried": "#b07cc6",
}


@dataclass(frozen=True, slots=True)
class Bar:
    task: str
    lane: str
    start: float
    end: float
    status: str = "planned"


def lanes_for(bars: Sequence[Bar]) -> list[tuple[str, list[Bar]]]:
    """Split each node's bars into non-overlapping rows (slots), so parallel tasks stay visible."""
    out: list[tuple[str, list[Bar]]] = []
    by_node: dict[str, list[Bar]] = {}
    for b in sorted(bars, key=lambda b: (b.start, b.end, b.task)):
        by_node.setdefault(b.lane, []).append(b)
    for node in sorted(by_node):
        rows: list[list[Bar]] = []
        for b in by_node[node]:
            for row in rows:
                if row[-1].end <= b.start + 1e-12:
                    row.append(b)
                    break
            else:
                rows.append([b])
        for i, row in enumerate(rows):
            out.append((f"{node} #{i + 1}" if len(rows) > 1 else node, row))
    return out


def gantt_html(bars: Sequence[Bar], title: str, subtitle: str = "") -> str:
    rows = lanes_for(bars)
    t0 = min((b.start for b in bars), default=0.0)
    t1 = max((b.end for b in bars), default=1.0)
    span = max(t1 - t0, 1e-9)
    left, width, row_h = 160, 960, 22
    height = 40 + row_h * max(len(rows), 1) + 30
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}text{font-size:11px}"
        ".lane{fill:#333}.axis{stroke:#999}</style></head><body>",
        f"<h2>{html.escape(title)}</h2>",
        f"<p>{html.escape(subtitle)}</p>" if subtitle else "",
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height}">',
    ]
    for i, (lane, lane_bars) in enumerate(rows):
        y = 30 + i * row_h
        parts.append(f'<text class="lane" x="4" y="{y + 15}">{html.escape(lane)}</text>')
        for b in lane_bars:
            x = left + (b.start - t0) / span * width
            w = max(1.0, (b.end - b.start) / span * width)
            color = _COLORS.get(b.status, "#999")
            label = html.escape(f"{b.task}: {b.start - t0:.3f}s - {b.end - t0:.3f}s ({b.status})")
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 4}" fill="{color}" '
                f'stroke="#fff"><title>{label}</title></rect>'
            )
            if w > 40:
                name = html.escape(b.task[: int(w / 7)])
                parts.append(f'<text x="{x + 3:.1f}" y="{y + 14}" fill="#fff">{name}</text>')
    axis_y = 30 + row_h * max(len(rows), 1) + 4
    parts.append(f'<line class="axis" x1="{left}" y1="{axis_y}" x2="{left + width}" y2="{axis_y}"/>')
    for k in range(11):
        x = left + k * width / 10
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle">{span * k / 10:.2f}s</text>')
    parts.append("</svg></body></html>")
    return "".join(parts)


def run_bars(events: Iterable[Any]) -> list[Bar]:
    """Bars for every attempt in a run's event log (retried attempts included)."""
    from podium.model import events as ev

    open_: dict[str, tuple[float, str]] = {}
    bars: list[Bar] = []
    ends = {
        ev.TASK_SUCCEEDED: st.SUCCEEDED,
        ev.TASK_FAILED: st.FAILED,
        ev.TASK_RETRYING: "retried",
        ev.TASK_CANCELLED: st.CANCELLED,
        ev.TASK_RESET: st.CANCELLED,
    }
    last_ts = 0.0
    for e in events:
        last_ts = max(last_ts, e.ts)
        if e.type == ev.TASK_STARTED:
            open_[e.task_id] = (e.ts, e.data.get("node", "local"))
        elif e.type in ends and e.task_id in open_:
            start, node = open_.pop(e.task_id)
            bars.append(Bar(e.task_id, node, start, e.ts, ends[e.type]))
    for tid, (start, node) in open_.items():
        bars.append(Bar(tid, node, start, last_ts, st.RUNNING))
    return bars


def write_gantt(store: Any, run_id: str, path: str) -> None:
    """Write the run's real schedule (every attempt, from the event log) as an HTML Gantt page."""
    from pathlib import Path

    record = store.get_run(run_id)
    page = gantt_html(run_bars(store.events(run_id)), f"run {run_id} of {record.workflow}", record.status)
    write_page(Path(path), page, "--gantt")


def write_page(out: Any, page: str, option: str) -> None:
    """Write an HTML page to path ``out`` (its folder made if missing); a ``UsageError`` naming
    ``option`` and the reason if it cannot be written."""
    from podium.errors import UsageError

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"{option} {out}: cannot write it: {e.strerror or e}") from None
