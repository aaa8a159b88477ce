"""What the CLI prints is safe for a terminal: escape sequences from spec names and task output
are shown escaped, never sent raw; every error is one line set ending in a newline.

Attack: a spec or a task's output carrying ``ESC [2J`` (clear the screen), ``ESC ] 0 ; ... BEL``
(set the title) or ``ESC c`` (reset) to hide or forge what the user reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from security_helpers import cli, write

from podium.cli.terminal import safe

ESC = "\x1b"


def test_escape_sequences_in_names_and_output_are_escaped(tmp_path: Path) -> None:
    write(tmp_path / "podium.toml", 'allow_programs = ["sh"]\n')
    spec = {
        "name": f"wf{ESC}]0;pwned\x07",
        "tasks": {
            f"t{ESC}c": {"argv": ["sh", "-c", r'printf "\033[2Jgone\n" >&2; exit 1']},
        },
    }
    write(tmp_path / "s.json", __import__("json").dumps(spec))
    db = str(tmp_path / "p.db")
    code, out, err = cli(["run", "s.json", "--store", db, "--run-id", "r1", "--no-progress"], tmp_path)
    assert code == 1
    code2, shown, err2 = cli(["show", "r1", "--store", db, "--events"], tmp_path)
    code3, listed, err3 = cli(["runs", "--store", db], tmp_path)
    code4, valid, err4 = cli(["validate", "s.json"], tmp_path)
    assert (code2, code3, code4) == (0, 0, 0), err2 + err3 + err4
    for text in (out, err, shown, err2, listed, err3, valid, err4):
        assert ESC not in text and "\x07" not in text
    assert "\\x1b[2Jgone" in out  # the task's stderr, quoted in its error, escaped
    assert "t\\x1bc" in out and "t\\x1bc" in shown
    assert "wf\\x1b]0;pwned\\x07" in valid


def test_escapes_in_error_messages_are_escaped(tmp_path: Path) -> None:
    write(tmp_path / "s.json", '{"tasks": {"a\\u001b[2Jb": {"argv": ["x"]}}}')
    code, _out, err = cli(["validate", "s.json"], tmp_path)
    assert code == 2 and ESC not in err and "a\\x1b[2Jb" in err


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "missing.yaml"],
        ["run", "missing.yaml"],
        ["show", "nope", "--store", "memory:"],
        ["plan", "missing.stg"],
        ["validate", "bad.yaml"],
        ["run", "bad.yaml", "-p", "=x"],
    ],
)
def test_every_error_is_lines_ending_in_a_newline(tmp_path: Path, args: list[str]) -> None:
    write(tmp_path / "bad.yaml", "tasks:\n  a: {argv: [x], timeout: soon, bogus: 1}\n")
    code, out, err = cli(args, tmp_path)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.endswith("\n") and not err.endswith("\n\n")


def test_safe_keeps_text_and_escapes_controls() -> None:
    assert safe("plain\ttext\nnext line") == "plain\ttext\nnext line"
    assert safe(f"{ESC}[31mred\r\x00\x9b\u202e") == "\\x1b[31mred\\x0d\\x00\\x9b\\u202e"
    assert safe(safe(f"{ESC}x")) == safe(f"{ESC}x")
    assert safe("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
