"""``podium report``: a run as one self-contained HTML page (where time and money went).

``write_report(store, run_id, path, workflow=None)`` gathers the run through
``report.data.run_detail`` (shaped as the run read model's ``RunDetail``), derives figures in
``report.analysis`` and renders ``report.page`` (the Gantt in ``report.gantt``). An edge:
nothing imports it. Invariants: the page needs nothing but a browser; every user-supplied
string is escaped; the file is written whole or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def write_report(store: Any, run_id: str, path: str | os.PathLike[str], workflow: Any = None) -> Path:
    """Write the report of ``run_id`` to ``path`` (atomically: a reader never sees half a page)."""
    from podium.report.data import run_detail
    from podium.report.page import report_html

    page = report_html(run_detail(store, run_id, workflow))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # same folder: the rename is atomic
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


__all__ = ["write_report"]
