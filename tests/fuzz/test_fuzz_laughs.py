"""A YAML "billion laughs" document is rejected quickly, with a clear message, wherever the
command line reads YAML: a spec given to ``podium run`` / ``podium plan``, and a cluster file.

Each case runs in a child interpreter with a 1 GiB address-space limit and a 5 s kill
timer, so a document that does explode fails this test instead of the machine; the child
times the rejection itself (``podium.cli.main``), not its own start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

LAUGHS = "\n".join(
    ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
)
CHILD = textwrap.dedent(
    """
    import contextlib, io, json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.RLIM_INFINITY))
    from podium.cli import main
    err = io.StringIO()
    t0 = time.perf_counter()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(sys.argv[1:])
        except SystemExit as e:
            code = e.code
    print(json.dumps({"seconds": time.perf_counter() - t0, "code": code, "err": err.getvalue()[:2000]}))
    """
)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "laughs.yaml").write_text(LAUGHS + "\nname: x\ntasks: {a: {argv: [echo]}}\n")
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump({"name": "ok", "tasks": {"a": {"argv": ["true"]}}}))
    (tmp_path / "podium.toml").write_text('allow_programs = ["true", "echo"]\n')
    cluster = LAUGHS + "\nnodes:\n  - name: n\n    capacity: {cpu: 2}\n    count: *a9\n    labels: *a9\n"
    (tmp_path / "laughs-cluster.yaml").write_text(cluster)
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "laughs.yaml", "--store", "memory:"],
        ["plan", "laughs.yaml"],
        ["plan", "ok.yaml", "--cluster", "laughs-cluster.yaml"],
        ["run", "ok.yaml", "--store", "memory:", "--cluster", "laughs-cluster.yaml"],
    ],
    ids=["run-spec", "plan-spec", "plan-cluster", "run-cluster"],
)
def test_billion_laughs_is_rejected_quickly_and_clearly(files: Path, argv: list[str]) -> None:
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, *argv], cwd=files, capture_output=True, text=True, timeout=5
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"podium {' '.join(argv)}: a billion-laughs document was not rejected within 5 s")
    assert out.returncode == 0, f"the child died: {out.stderr[-2000:]}"
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["code"] == 2, got
    assert got["err"].startswith("error: ") and "Traceback" not in got["err"], got
    assert len(got["err"]) < 1000, "the message should name the problem, not print the document"
    assert any(w in got["err"] for w in ("alias", "anchor")), got["err"]
    assert got["seconds"] < 1.0, got
