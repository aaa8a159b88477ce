"""The Python API for running and reading runs: ``run``, ``open_run``, ``runs``, ``RunResult``.

``podium.run(flow, params)`` is ``podium run FILE -p ...`` as a function call that returns the
run (``result["task"]`` is a task's value; ``status``, ``T``, ``R``, ``F``, ``tasks``);
``podium.open_run(run_id)`` reads a past run the same way; ``podium.runs()`` lists runs as the
read model's run objects (``docs/json.md``). ``import podium`` exports these lazily: the engine,
executors and stores are imported only when one is called. See ``docs/testing.md``.
"""

from __future__ import annotations

from podium.api.result import RunResult
from podium.api.running import open_run, run, runs

__all__ = ["RunResult", "open_run", "run", "runs"]
