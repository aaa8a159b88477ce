"""Random command lines for ``podium run / plan / show / resume / runs``, in process.

Each argument list, drawn from the commands' real flags, plausible and broken values and
random text, must end in a clean exit: 0, a failed run that says how to continue it, or a
one-line ``error: ...`` with the error's exit code; never a traceback or an escaping
exception; within 1 s and a bounded amount of memory. Runs are tiny (a few thread tasks)
against temp stores; nothing is written outside the temp directory. Every test stands alone:
the check that the fuzzer reaches real runs draws its own fixed sample of lines.
(``validate``/``graph``/``schema`` command lines are fuzzed in tests/load.)
"""

from __future__ import annotations

import contextlib
import io
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fuzz_specs import bounded
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.cli import main

SCALE = max(1, int(os.environ.get("PODIUM_FUZZ_SCALE", "1")))
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

OK = {
    "name": "fuzz-cli",
    "params": {"n": {"type": "int", "default": 2}},
    "tasks": {
        "a": {"call": "fuzz_tasks:add", "args": {"k": "${params.n}"}},
        "b": {"call": "fuzz_tasks:seq", "args": {"n": 3}},
        "c": {"call": "fuzz_tasks:item", "args": {"x": "${b}", "k": "${params.n}"}, "map": "x"},
        "d": {"call": "fuzz_tasks:add", "args": {"k": 1, "xs": ["${a}", "${c}"]}},
    },
}
REQUIRED = {
    "name": "fuzz-req",
    "params": {"label": "str"},
    "tasks": {"a": {"call": "fuzz_tasks:add", "args": {"k": 1}}},
}

COMMANDS = ["run", "plan", "show", "resume", "runs"]
SPECS = [
    "ok.yaml",
    "ok.yaml",
    "ok.yaml",
    "req.yaml",
    "bad.yaml",
    "missing.yaml",
    "flow.py",
    "nul\x00.yaml",
    "",
]
RUN_IDS = ["r1", "r1", "r2", "new", "bad id!", "x" * 65, "", "nul\x00"]
STORES = [
    "fuzz.db",
    "fuzz.db",
    "memory:",
    "ftp://x",
    "sqlite:///",
    "",
    "sqlite:///fuzz.db?bogus=1",
    "no/dir/x.db",
]
CLUSTERS = ["cluster.yaml", "cluster.yaml", "tiny.yaml", "bad.yaml", "missing.yaml", "ok.yaml", "nul\x00"]
PARAMS = ["n=3", "n=-7", "n=abc", "label=x", "bogus=1", "=", "n", "n=1=2", "n=99999999999999999999"]
NUMBERS = ["1", "0", "5", "-1", "0.5", "abc", "1e308", "nan", "inf", "10001", ""]
DURATIONS = ["10s", "1m", "0", "-5s", "abc", "1h30m", ""]
FLAGS: dict[str, dict[str, list[str] | None]] = {
    "run": {
        "-p": PARAMS,
        "--param": PARAMS,
        "--run-id": RUN_IDS,
        "--store": STORES,
        "--cluster": CLUSTERS,
        "--allow-module": ["fuzz_tasks", "fuzz_tasks", "os", ""],
        "--fifo": None,
        "--no-progress": None,
        "--gantt": ["out.html", "no/dir/out.html", ""],
    },
    "plan": {
        "--cluster": CLUSTERS,
        "--processors": NUMBERS,
        "--alpha": NUMBERS,
        "--beta": NUMBERS,
        "--deadline": DURATIONS,
        "--budget": NUMBERS,
        "--time-limit": ["0", "0", "-1", "abc"],  # never a real search: runs stay short
        "--json": None,
        "--html": ["plan.html", ""],
        "--allow-module": ["fuzz_tasks", "os"],
    },
    "show": {"--store": STORES, "--events": None, "--gantt": ["out.html", ""]},
    "resume": {
        "--store": STORES,
        "--cluster": CLUSTERS,
        "--gantt": ["out.html", ""],
        "--no-progress": None,
    },
    "runs": {"--store": STORES, "-n": NUMBERS, "--limit": NUMBERS},
}
POSITIONAL = {"run": SPECS, "plan": SPECS, "show": RUN_IDS, "resume": RUN_IDS, "runs": None}
JUNK = st.one_of(
    st.sampled_from([*COMMANDS, "--help", "-h", "--version", "--", "-", "--store", "-p", "--nope"]),
    st.text(max_size=6),
)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command, its positional argument (mostly valid), some of its own flags with mostly
    valid values in random order, and now and then junk tokens anywhere."""
    cmd = draw(st.sampled_from(COMMANDS))
    parts: list[list[str]] = []
    pos = POSITIONAL[cmd]
    if pos is not None and draw(st.integers(0, 9)) > 0:
        parts.append([draw(st.sampled_from(pos))])
    flags = FLAGS[cmd]
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=4)):
        values = flags[flag]
        if values is None:
            parts.append([flag])
        else:  # the first value is a valid one: drawn 3 times in 4, so many lines run for real
            valid = draw(st.integers(0, 3)) > 0
            parts.append([flag, values[0] if valid else draw(st.sampled_from(values))])
    parts = draw(st.permutations(parts)) if draw(st.integers(0, 3)) == 0 else parts
    argv = [cmd] + [tok for part in parts for tok in part]
    if cmd in ("run", "plan") and "--allow-module" not in argv and draw(st.integers(0, 3)) > 0:
        argv += ["--allow-module", "fuzz_tasks"]
    if draw(st.integers(0, 5)) == 0:
        junk = draw(st.lists(JUNK, min_size=1, max_size=3))
        at = draw(st.integers(0, len(argv)))
        argv = argv[:at] + junk + argv[at:]
    return argv


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temp project: specs, cluster files, a store holding run ``r1``; the default store
    and the working directory point into it while the module runs."""
    d = tmp_path_factory.mktemp("fuzz-cli")
    (d / "ok.yaml").write_text(yaml.safe_dump(OK))
    (d / "req.yaml").write_text(yaml.safe_dump(REQUIRED))
    (d / "bad.yaml").write_text("tasks: [\n  a: {call: x\n")
    (d / "flow.py").write_text("raise RuntimeError('a flow file that fails to import')\n")
    (d / "cluster.yaml").write_text(yaml.safe_dump({"nodes": [{"name": "n", "capacity": {"cpu": 4}}]}))
    (d / "tiny.yaml").write_text(yaml.safe_dump({"nodes": [{"name": "n", "capacity": {"cpu": 0.1}}]}))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        mp.setenv("PODIUM_STORE", str(d / "default.db"))
        for store in ("fuzz.db", str(d / "default.db")):
            code, _out, err = cli(
                ["run", "ok.yaml", "--run-id", "r1", "--store", store, "--allow-module", "fuzz_tasks"]
            )
            assert code in (0, None), err
        yield d


def cli(argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def run_line(argv: list[str]) -> object:
    """Run one command line and check it ended cleanly; return its exit code (0 for success)."""
    with bounded(argv):
        code, _out, err = cli(argv)
    assert "Traceback" not in err, (argv, err)
    assert code in (0, None, 1, 2, 3, 4), (argv, code, err)  # the exit codes of podium.errors
    if code not in (0, None):
        clean = err.startswith("error: ") or (code == 1 and "continue it with: podium resume" in err)
        assert clean, (argv, code, err)
    return code or 0


@settings(FUZZ, max_examples=700 * SCALE)
@given(command_lines())
def test_random_command_lines_end_cleanly(workdir: Path, argv: list[str]) -> None:
    run_line(argv)


def test_the_fuzzer_reached_real_runs(workdir: Path) -> None:
    """Guard against a fuzzer that only ever hits argument errors: a fixed sample drawn by the
    same generator (derandomized, so the same lines every time) runs workflows, plans them and
    reads stored runs successfully, and every line of it ends cleanly too."""
    outcomes: Counter[tuple[str, object]] = Counter()

    @settings(FUZZ, max_examples=300, derandomize=True)
    @given(command_lines())
    def sample(argv: list[str]) -> None:
        outcomes[(argv[0], run_line(argv))] += 1

    sample()
    assert sum(outcomes.values()) >= 250, outcomes
    assert outcomes[("run", 0)] >= 10, outcomes
    assert outcomes[("plan", 0)] >= 10, outcomes
    assert outcomes[("show", 0)] + outcomes[("resume", 0)] >= 10, outcomes


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "nul\x00.yaml"],
        ["plan", "nul\x00.yaml"],
        ["run", "ok.yaml", "--cluster", "nul\x00", "--allow-module", "fuzz_tasks"],
        ["resume", "r1", "--cluster", "nul\x00"],
    ],
)
def test_a_nul_byte_in_a_path_is_a_clean_error(workdir: Path, argv: list[str]) -> None:
    code, _out, err = cli(argv)
    assert code == 2 and err.startswith("error: "), (code, err)
