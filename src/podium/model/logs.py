"""``LogRecord``: what one task attempt wrote (stdout, stderr, logging), as stored.

Invariants: ``text`` is at most ``LOG_LIMIT`` bytes of UTF-8, the *last* ones the attempt wrote;
``cut`` counts the bytes dropped before them, and ``shown()`` starts with a note saying so;
``marks`` tag the text by stream and time: ``(byte offset in text, "stdout"|"stderr", ts)`` at
each point where the stream changes or a new write starts after a pause; secrets the run was
granted are masked before a record is made (see ``podium.executors.capture``).
"""

from __future__ import annotations

from typing import NamedTuple

#: Bytes of output kept per attempt (the last ones).
LOG_LIMIT = 1 << 20


class LogRecord(NamedTuple):
    """One attempt's captured output (see the module docstring)."""

    task_id: str
    attempt: int
    text: str
    cut: int = 0
    marks: tuple[tuple[int, str, float], ...] = ()

    def shown(self) -> str:
        """The text as people read it: a note about cut output first, when some was cut."""
        return cut_note(self.cut) + self.text


def cut_note(cut: int) -> str:
    """The line that stands for ``cut`` bytes of output dropped from the start ("" for none)."""
    return f"[... {cut} earlier bytes of output were cut; the last {LOG_LIMIT} are kept ...]\n" if cut else ""
