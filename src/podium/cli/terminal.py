"""Text from specs, tasks and the store made safe to print on a terminal.

Task names, workflow names, error messages and task output come from untrusted specs and
programs. Printed raw, an escape sequence in them can rewrite the screen, hide lines, set the
window title or (on some terminals) answer back keystrokes. ``safe`` shows every control
character except newline and tab as a visible escape (``\\x1b``) and masks secrets
(``podium.secrets.redact``).

Invariant: ``safe`` is idempotent on its own output and never drops text, it only rewrites
control characters and secret values.
"""

from __future__ import annotations

import re
from typing import Any

from podium.secrets import redact

#: C0 controls but tab and newline, DEL, C1 controls, and Unicode line/paragraph separators
#: and bidirectional overrides (they reorder what the reader sees).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe(value: Any) -> str:
    """``value`` as text fit for a terminal: control characters escaped, secrets masked."""
    text = redact(str(value))
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
