"""The files of a container attempt: its folder, inputs, env file and result.

An attempt folder is ``$TMPDIR/podium-containers-UID/OWNER/XXXXXXXX`` (``OWNER`` is the
``podium.owner`` label of the process, host, pid and start time, with ``+`` for ``:``) and holds:

- ``in/NAME.json``: one JSON document per input, mounted read-only at ``/podium/in``;
- ``out/``: empty and writable, mounted at ``/podium/out``; ``out/result.json`` is the result;
- ``env``: the environment values (mode 0600), read by the runtime client;
- the runtime client runs in the folder itself (Podman's conmon leaves its ``oom`` marker there).

Invariants: the folder is removed when the attempt ends; the folders of a process that died
(``kill -9``) are removed by ``remove_dead()``, which the first container attempt of each run
in a later process calls, so inputs and env values do not stay on disk; the per-user root is
used only if it is a real folder of this user that no one else can open; the result file is
opened without following links and without blocking, so an image cannot make Podium read a
host file or hang on a fifo.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from podium.errors import USER_ERROR
from podium.executors.container_runtime import owner, owner_alive
from podium.executors.failure import failure
from podium.model import container as rules

#: Largest result file read back.
MAX_RESULT_BYTES = 64 << 20


def _root() -> str:
    """This user's private folder of attempt folders (created on first use)."""
    base = os.path.join(tempfile.gettempdir(), f"podium-containers-{os.getuid()}")
    os.makedirs(base, 0o700, exist_ok=True)
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise failure(
            USER_ERROR,
            "ContainerRuntimeError",
            f"{base} is not a private folder of this user: remove it, Podium makes it again",
            retryable=False,
        )
    return base


def _mine() -> str:
    return os.path.join(_root(), owner().replace(":", "+"))  # no ':' in a volume's source


@contextmanager
def attempt_folder() -> Iterator[str]:
    """A fresh folder for one attempt, removed afterwards whatever happens."""
    mine = _mine()
    os.makedirs(mine, 0o700, exist_ok=True)
    folder = tempfile.mkdtemp(dir=mine)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_mine() -> None:
    """Remove this process's attempt folders (at exit: attempts still running are abandoned)."""
    try:
        shutil.rmtree(_mine(), ignore_errors=True)
    except Exception:  # no usable root: nothing of ours is there
        pass


def remove_dead() -> list[str]:
    """Remove the attempt folders of processes that are gone; return their owner names."""
    try:
        base = _root()
    except Exception:
        return []
    dead = [name for name in os.listdir(base) if not owner_alive(name.replace("+", ":"))]
    for name in dead:
        shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    return dead


def write_inputs(folder: str, kwargs: Mapping[str, Any], task: str) -> tuple[str, str]:
    """``in/NAME.json`` for each input and an empty ``out/``; their paths."""
    indir, outdir = os.path.join(folder, "in"), os.path.join(folder, "out")
    os.mkdir(indir, 0o755)
    os.mkdir(outdir)
    os.chmod(outdir, 0o777)  # the image may run as any user; only this container sees the folder
    for name, value in kwargs.items():
        try:
            data = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise failure(
                USER_ERROR,
                "InputError",
                f"container task {task!r}: input {name!r} cannot be written as JSON ({e})",
                retryable=False,
            ) from None
        with open(os.path.join(indir, f"{name}.json"), "w", encoding="utf-8") as f:
            f.write(data)
    return indir, outdir


def write_env(folder: str, env: Mapping[str, str]) -> str | None:
    """The env file (``NAME=value`` lines, mode 0600), or None when there is no env."""
    if not env:
        return None
    path = os.path.join(folder, "env")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines(f"{k}={v}\n" for k, v in env.items())
    return path


def read_result(outdir: str, where: str) -> Any:
    """The JSON in ``out/result.json``; None without the file; a ``ResultError`` otherwise."""

    def bad(message: str) -> Exception:
        text = f"{where}: {rules.OUT_DIR}/{rules.RESULT_FILE} {message}"
        return failure(USER_ERROR, "ResultError", text, retryable=False)

    try:
        fd = os.open(os.path.join(outdir, rules.RESULT_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise bad(f"cannot be read ({e.strerror}): write a regular file") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise bad("is not a regular file")
        if st.st_size > MAX_RESULT_BYTES:
            raise bad(f"is {st.st_size} bytes, over the limit of {MAX_RESULT_BYTES} bytes")
        data = f.read(MAX_RESULT_BYTES + 1)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad(f"is not valid JSON ({e})") from None
