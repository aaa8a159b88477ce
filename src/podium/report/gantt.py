"""The report's Gantt chart: what each node actually ran beside what the plan put there (SVG).

Per node, rows of actual attempts (coloured by outcome; the critical path outlined) and, when
the run recorded its plan's spans, rows of planned spans under them. Invariants: inline SVG
only; every task name is escaped; one ``rect.bar`` per attempt and per planned span, each with
``data-task`` so pages and tests can find them; times are seconds from the run's first start.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from podium.cli.gantt import Bar, lanes_for

COLORS = {
    "succeeded": "#4c9f70",
    "cancelled": "#f0ad4e",
    "interrupted": "#9e9e9e",
    "running": "#5bc0de",
    "planned": "#8fb3f5",
}
FAILED = "#d9534f"
PLAN_SUFFIX = " · plan"


def gantt_svg(detail: Mapping[str, Any], critical: set[str]) -> str:
    t0 = detail.get("started_at")
    bars: list[Bar] = []
    for t in detail["tasks"]:
        for a in t["attempts_detail"]:
            end = (
                a["finished_at"]
                if a["finished_at"] is not None
                else detail.get("updated_at") or a["started_at"]
            )
            bars.append(Bar(t["task_id"], a["node"] or "-", a["started_at"], end, a["outcome"] or "running"))
    plan = detail.get("plan") or {}
    origin = plan.get("origin")
    if plan.get("spans") and origin is not None:
        for task, (start, end) in sorted(plan["spans"].items()):
            node = plan["nodes"].get(task, "-")
            bars.append(Bar(task, f"{node}{PLAN_SUFFIX}", origin + start, origin + end, "planned"))
    if not bars:
        return '<p class="muted">No attempt ran.</p>'
    t0 = min([b.start for b in bars] + ([t0] if t0 is not None else []))
    t1 = max(b.end for b in bars)
    span = max(t1 - t0, 1e-9)
    rows = lanes_for(bars)
    left, width, row_h, top = 170, 900, 20, 8
    height = top + row_h * len(rows) + 28
    out = [
        f'<svg class="gantt" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + width + 10} {height}" '
        f'width="{left + width + 10}" height="{height}" role="img" aria-label="Gantt chart">'
    ]
    for i, (lane, lane_bars) in enumerate(rows):
        y = top + i * row_h
        planned = lane_bars[0].status == "planned"  # a lane holds planned or actual bars only
        if i % 2 == 0:
            out.append(f'<rect x="0" y="{y}" width="{left + width}" height="{row_h}" fill="#f6f7f9"/>')
        out.append(f'<text class="lane" x="4" y="{y + 14}">{escape(lane[:26])}</text>')
        for b in lane_bars:
            x = left + (b.start - t0) / span * width
            w = max(1.5, (b.end - b.start) / span * width)
            kind = "planned" if planned else "actual"
            color = COLORS.get(b.status, FAILED)
            on_path = not planned and b.task in critical and b.status == "succeeded"
            extra = ' stroke="#111" stroke-width="2"' if on_path else ""
            if planned:
                extra = ' fill-opacity="0.55" stroke="#3d6fd1" stroke-dasharray="3 2"'
            tip = f"{b.task}: {b.start - t0:.3f}s to {b.end - t0:.3f}s ({b.status})"
            out.append(
                f'<rect class="bar {kind}{" critical" if on_path else ""}" data-task="{escape(b.task)}" '
                f'data-outcome="{escape(b.status)}" x="{x:.1f}" y="{y + 2}" width="{w:.1f}" '
                f'height="{row_h - 4}" fill="{color}"{extra}><title>{escape(tip)}</title></rect>'
            )
            if w > 48:
                label = escape(b.task[: int(w / 7)])
                out.append(f'<text class="in" x="{x + 3:.1f}" y="{y + 14}">{label}</text>')
    axis = top + row_h * len(rows) + 4
    out.append(f'<line x1="{left}" y1="{axis}" x2="{left + width}" y2="{axis}" stroke="#999"/>')
    for k in range(11):
        x = left + k * width / 10
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{axis + 16}" text-anchor="middle">{span * k / 10:.2f}s</text>'
        )
    out.append("</svg>")
    return "".join(out)


def legend(has_plan_spans: bool) -> str:
    items = [
        ("succeeded", COLORS["succeeded"]),
        ("failed / retried", FAILED),
        ("cancelled", COLORS["cancelled"]),
        ("interrupted", COLORS["interrupted"]),
    ]
    if has_plan_spans:
        items.append(("planned", COLORS["planned"]))
    parts = [f'<span class="key"><i style="background:{c}"></i>{escape(n)}</span>' for n, c in items]
    parts.append('<span class="key"><i class="crit"></i>critical path</span>')
    return '<p class="legend">' + "".join(parts) + "</p>"
