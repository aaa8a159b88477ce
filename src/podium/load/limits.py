"""Bounds on a spec document, kept in a leaf module so callers need not import YAML."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on a spec document (bytes, number of tasks, nesting depth); each can be raised."""

    max_bytes: int = 1024 * 1024
    max_tasks: int = 10_000
    max_depth: int = 32
