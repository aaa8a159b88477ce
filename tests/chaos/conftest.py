"""Chaos suite fixtures and its summary line (seed and fault counts, shown without ``-s``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_harness import SEED
from chaos_invariants import STATS, TAG_ENV, assert_no_leftovers, summary_line


def pytest_report_header(config: pytest.Config) -> str:
    return f"chaos seed: {SEED} (set PODIUM_CHAOS_SEED to change it)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not STATS:
        return
    line = summary_line(SEED)
    terminalreporter.write_sep("-", "chaos")
    terminalreporter.write_line(line)


@pytest.fixture
def tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A tag carried by every process the scenario starts; afterwards none may be left."""
    value = f"chaos-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv(TAG_ENV, value)  # in-process executors copy the environment to workers
    yield value
    assert_no_leftovers(value, tmp_path)
