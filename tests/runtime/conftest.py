"""Fixtures for engine tests: a real SQLite store and a real local executor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import make_executor

from podium.executors.local import LocalExecutor
from podium.store import open_store
from podium.types import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The default embedded store: SQLite behind its journal."""
    s = open_store(str(tmp_path / "podium.db"))
    yield s
    s.close()


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    ex = make_executor()
    yield ex
    ex.shutdown()
