"""The README documents every command of the `podium` CLI (a new command fails this test until
it is in the README's command table), and the code of the pages in ``RUN_DOCS`` runs as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podium.cli import cli, main  # noqa: F401  (main registers the commands lazily)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_command_is_in_the_readme() -> None:
    from podium.cli import artifacts, learn, logs, plan, report, resume, run, server, show, spec  # noqa: F401  (registers commands)

    text = README.read_text(encoding="utf-8")
    commands = sorted(cli.commands)
    assert len(commands) >= 9
    missing = [c for c in commands if f"`podium {c}" not in text]
    assert not missing, f"commands missing from README.md: {', '.join(missing)}"


# -- the code on documentation pages runs as written -------------------------------------------
RUN_DOCS = ("testing.md", "json.md")  # pages whose every ```python block is run as written


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a Markdown page, in order."""
    import re

    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", RUN_DOCS)
def test_the_code_of_a_docs_page_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page's blocks run in order in one namespace (as one file would), from an empty folder;
    then every ``test_*`` function they define is called, with ``tmp_path`` if it asks for it."""
    import inspect

    blocks = python_blocks((README.parent / "docs" / page).read_text(encoding="utf-8"))
    assert blocks, f"docs/{page} has no python blocks"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": f"docs_{page.removesuffix('.md')}"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/{page}:block{i + 1}", "exec"), namespace)
    tests = {name: f for name, f in namespace.items() if name.startswith("test_") and callable(f)}
    for n, f in enumerate(tests.values()):
        folder = tmp_path / f"test{n}"
        folder.mkdir()
        f(**({"tmp_path": folder} if "tmp_path" in inspect.signature(f).parameters else {}))
    assert page != "testing.md" or len(tests) >= 4
