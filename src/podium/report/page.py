"""``report_html``: one self-contained HTML page about a run, from its ``RunDetail``.

Sections: summary (T, R, F, the plan's T, lower bound and gap, wall time, parameters), Gantt
of actual vs planned spans per node, requested vs used CPU and peak memory per task, cost by
node and by task, retries and failures with their kinds, the slowest tasks and the critical
path. Invariants: no external asset (inline CSS, SVG and a few lines of JS); every string that
comes from the run (task, node and workflow names, parameters, error messages) is escaped for
HTML, and the embedded JSON cannot close its script element; unknown usage reads
"not measured", never 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from podium.model.resources import format_size
from podium.report import analysis as an
from podium.report.gantt import gantt_svg, legend

NOT_MEASURED = "not measured"
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330}
main{max-width:1120px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px}
code{font-family:ui-monospace,Menlo,monospace;font-size:13px}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff;background:#777}
.status.succeeded{background:#2e8b57}.status.failed{background:#c0392b}
.status.cancelled{background:#d68910}.status.running{background:#2e86c1}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #e3e6ec;border-radius:8px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px}.card span{color:#667;font-size:12px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef0f4;vertical-align:top}
th{background:#f6f7f9;cursor:pointer;user-select:none;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#889}.nm{color:#a0a6b3;font-style:italic}
.hbar{height:10px;background:#5b8def;border-radius:2px;min-width:1px}
svg.gantt{max-width:100%;height:auto;font:11px system-ui,sans-serif}
svg .lane{fill:#333}svg .in{fill:#fff;pointer-events:none}svg .tick{fill:#667}
.legend{font-size:12px;color:#556}.key{margin-right:14px}
.key i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
.key i.crit{border:2px solid #111;box-sizing:border-box;background:#4c9f70}
.err{font-family:ui-monospace,Menlo,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word}
footer{margin-top:36px;color:#889;font-size:12px}
"""
_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v || a.cells[col].textContent;
        var y = b.cells[col].dataset.v || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        if (!isNaN(nx) && !isNaN(ny)) { return (nx - ny) * dir; }
        return x.localeCompare(y) * dir;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def e(value: Any) -> str:
    return escape(str(value), quote=True)


def dur(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.2f} s"
    return f"{int(s // 60)} min {s % 60:04.1f} s"


def money(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def _table(cls: str, head: Sequence[str], rows: Iterable[Sequence[str]], num: Iterable[int] = ()) -> str:
    nums = set(num)
    ths = "".join(f"<th{' class=num' if i in nums else ''}>{e(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f'<table class="sortable {cls}"><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>'


def _td(text: str, v: Any = None, num: bool = False, raw: bool = False) -> str:
    attrs = (' class="num"' if num else "") + (f' data-v="{e(v)}"' if v is not None else "")
    return f"<td{attrs}>{text if raw else e(text)}</td>"


def _nm(text: str = NOT_MEASURED) -> str:
    return f'<td class="nm" data-v="-1">{e(text)}</td>'


def _card(label: str, value: str, field: str) -> str:
    return f'<div class="card"><b data-field="{e(field)}">{e(value)}</b><span>{e(label)}</span></div>'


def _summary(d: Mapping[str, Any]) -> str:
    plan = d.get("plan")
    cards = [
        _card("makespan T", dur(d["T"]), "T"),
        _card("resource cost R", money(d["R"]), "R"),
        _card(f"F = {d['alpha']:g}·T + {d['beta']:g}·R", money(d["F"]), "F"),
        _card("wall time", dur(d.get("wall_time")), "wall_time"),
    ]
    if plan:
        cards += [
            _card("planned T", dur(plan.get("T")), "plan_T"),
            _card("plan lower bound (F)", money(plan.get("lower_bound")), "lower_bound"),
            _card("plan gap", "-" if plan.get("gap") is None else f"{plan['gap'] * 100:.2f}%", "gap"),
        ]
    counts = ", ".join(f"{n} {k}" for k, n in sorted(d["counts"].items()))
    started = d.get("started_at")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started is not None else "never"
    plan_note = (
        f"Plan by {e(plan.get('method') or '?')} ({e(plan.get('reason') or '')}); "
        f"{plan.get('replans', 0)} re-plan(s) during the run."
        if plan
        else "No plan recorded: the engine plans runs on several nodes; on one node it dispatches "
        "by critical path."
    )
    params = "".join(
        f"<tr><td><code>{e(k)}</code></td><td><code>{e(json.dumps(v, default=str))}</code></td></tr>"
        for k, v in sorted(d["params"].items())
    )
    return (
        f'<div class="cards">{"".join(cards)}</div>'
        f"<p>Started {e(when)}; tasks: {e(counts or 'none')}. {plan_note}</p>"
        + (f'<table class="params"><tbody>{params}</tbody></table>' if params else "")
    )


def _usage(d: Mapping[str, Any]) -> str:
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for t in d["tasks"]:
        if t["attempts_detail"]:
            by_name.setdefault(t["name"], []).append(t)
    rows = []
    for name, tasks in by_name.items():
        attempts = [a for t in tasks for a in t["attempts_detail"]]
        res = attempts[-1]["resources"]
        cpu_req, mem_req = res.get("cpu"), res.get("memory")
        cpu = [a for a in attempts if a["usage"]["cpu_time"] is not None]
        mem = [a["usage"]["peak_memory"] for a in attempts if a["usage"]["peak_memory"] is not None]
        sources = sorted({a["usage"]["source"] for a in attempts if a["usage"]["source"]})
        row = [_td(name), _td(str(len(attempts)), len(attempts), True)]
        row.append(_td(f"{cpu_req:g}" if cpu_req else "0", cpu_req or 0, True))
        if cpu:
            used = sum(a["usage"]["cpu_time"] for a in cpu)
            # seconds on the worker when measured, else the attempt's duration
            wall = sum(a["usage"]["wall_time"] or a["duration"] or 0.0 for a in cpu)
            cores = used / wall if wall else 0.0
            row.append(_td(f"{cores:.2f} cores ({used:.2f} s)", cores, True))
        else:
            row.append(_nm())
        row.append(_td(format_size(mem_req) if mem_req else "none", mem_req or 0, True))
        row.append(_td(format_size(max(mem)), max(mem), True) if mem else _nm())
        row.append(_td(", ".join(sources) if sources else "-"))
        rows.append(row)
    head = ["task", "attempts", "cpu requested", "cpu used", "memory requested", "peak memory", "measured by"]
    return _table("usage", head, rows, num=(1, 2, 3, 4, 5))


def _costs(d: Mapping[str, Any]) -> str:
    parts = []
    for key, title in (("node", "node"), ("name", "task")):
        items = an.cost_by(d, key)
        top = max((c for _k, c in items), default=0.0) or 1.0
        rows = [
            [
                _td(k),
                _td(money(c), c, True),
                _td(f'<div class="hbar" style="width:{c / top * 100:.1f}%"></div>', raw=True),
            ]
            for k, c in items
        ]
        parts.append(f"<h3>by {title}</h3>" + _table(f"cost-{title}", [title, "cost", ""], rows, num=(1,)))
    return "".join(parts)


def _failures(d: Mapping[str, Any]) -> str:
    failed = an.failed_attempts(d)
    if not failed:
        return '<p class="muted">Every attempt succeeded.</p>'
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(an.failure_kinds(d).items()))
    rows = []
    for t, a in failed:
        err = a["error"] or {}
        final = a is t["attempts_detail"][-1] and t["status"] == "failed"
        msg = f"{err.get('type', '')}: {err.get('message', '')}" if err else ""
        rows.append(
            [
                _td(t["task_id"]),
                _td(str(a["attempt"]), a["attempt"], True),
                _td(a["outcome"]),
                _td(
                    "failed for good" if final else "retried" if a["outcome"] != "interrupted" else "resumed"
                ),
                _td(a["node"] or "-"),
                _td(dur(a["duration"]), a["duration"], True),
                f'<td class="err">{e(msg)}</td>',
            ]
        )
    head = ["task", "attempt", "kind", "then", "node", "duration", "error"]
    return f"<p>By kind: {e(kinds)}.</p>" + _table("failures", head, rows, num=(1, 5))


def _slowest(d: Mapping[str, Any]) -> str:
    rows = [
        [
            _td(t["task_id"]),
            _td(dur(an.busy(t)), an.busy(t), True),
            _td(str(t["attempts"]), t["attempts"], True),
            _td(t["node"] or "-"),
            _td(t["status"]),
        ]
        for t in an.slowest(d)
    ]
    return _table("slowest", ["task", "busy", "attempts", "node", "status"], rows, num=(1, 2))


def _critical(path: tuple[list[str], float] | None, d: Mapping[str, Any]) -> str:
    if path is None:
        return (
            '<p class="muted">Not available: the run\'s workflow spec could not be loaded, so its '
            "dependencies are unknown.</p>"
        )
    tasks = {t["task_id"]: t for t in d["tasks"]}
    items = "".join(f"<li><code>{e(tid)}</code> {e(dur(an.busy(tasks[tid])))}</li>" for tid in path[0])
    share = f" ({path[1] / d['T'] * 100:.0f}% of T)" if d["T"] else ""
    return f'<p>{e(dur(path[1]))} of running time{e(share)}:</p><ol class="critical-path">{items}</ol>'


def _json(value: Any) -> str:
    """JSON that is safe inside a script element: no ``<``, ``>`` or ``&`` survive as such."""
    text = json.dumps(value, default=str, sort_keys=True)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def report_html(d: Mapping[str, Any]) -> str:
    path = an.critical_path(d)
    critical = set(path[0]) if path else set()
    plan = d.get("plan") or {}
    spans_note = (
        ""
        if plan.get("spans")
        else '<p class="muted">Planned spans were not recorded for this run: only actual spans are drawn.</p>'
    )
    summary = {k: d[k] for k in ("run_id", "workflow", "status", "T", "R", "F", "alpha", "beta", "wall_time")}
    summary |= {"params": d["params"], "plan": {k: v for k, v in plan.items() if k not in ("spans", "nodes")}}
    title = f"Run {d['run_id']} of {d['workflow']}"
    sections = [
        ("summary", "Summary", _summary(d)),
        (
            "gantt",
            "Actual vs planned, per node",
            gantt_svg(d, critical) + legend(bool(plan.get("spans"))) + spans_note,
        ),
        ("usage", "Requested vs used, per task", _usage(d)),
        ("cost", "Cost", _costs(d)),
        ("failures", "Retries and failures", _failures(d)),
        ("slowest", "Slowest tasks", _slowest(d)),
        ("critical", "Critical path", _critical(path, d)),
    ]
    body = "".join(f'<section id="{sid}"><h2>{e(h)}</h2>{html}</section>' for sid, h, html in sections)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>Run <code>{e(d['run_id'])}</code> of <code>{e(d['workflow'])}</code> "
        f'<span class="status {e(d["status"])}">{e(d["status"])}</span></h1>'
        f"{body}<footer>Podium run report ({e(d['schema'])}).</footer></main>"
        f'<script type="application/json" id="run-summary">{_json(summary)}</script>'
        f"<script>{_JS}</script></body></html>"
    )
