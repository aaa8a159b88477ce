"""What a container task may say: its image, input and environment names, working dir, network.

A container task (``kind: container``) runs ``image`` with ``argv``; its inputs are written as
``/podium/in/NAME.json`` (a read-only mount) and its result is the JSON document it leaves in
``/podium/out/result.json``. These checks are shared by both front ends (which report them with
positions) and the executor (which checks again at run time, since argv, env and the working
dir may hold values of upstream results). Each returns a message, or None when the value is fine.

Invariants: an image reference can never be read as a runtime option (it starts with a letter
or digit and holds no spaces); input names are plain file names; environment names are plain
identifiers outside the reserved ``PODIUM_`` prefix; an image is allowed only by an explicit
allow-list entry, never by the spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from podium.model.task import TaskSpec

NETWORKS = ("none", "host")
IN_DIR = "/podium/in"
OUT_DIR = "/podium/out"
RESULT_FILE = "result.json"
RESERVED_ENV_PREFIX = "PODIUM_"

# registry[:port]/path[:tag][@algo:digest], as Docker and Podman accept it (kept strict)
_IMAGE = re.compile(
    r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*(?::[0-9]+(?=/))?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Fa-f0-9]{32,}))?$"
)
_INPUT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")


def image_problem(image: object) -> str | None:
    if not isinstance(image, str) or not image:
        return "expected an image reference like 'localhost/tool:1.0'"
    if "${" in image:
        return "the image must be written out, not computed from params or results"
    if len(image) > 255 or _IMAGE.match(image) is None:
        return f"{image!r} is not an image reference (like 'registry.example.com/team/tool:1.0')"
    return None


def image_repository(image: str) -> str:
    """``registry:5000/a/b:tag@sha256:..`` -> ``registry:5000/a/b`` (the image without tag or digest)."""
    m = _IMAGE.match(image)
    return m.group("repo") if m else image


def image_allowed(image: str, allowed: Iterable[str]) -> bool:
    """Whether an allow-list lets ``image`` run. An entry allows that exact reference; an entry
    without tag or digest allows every tag and digest of that repository; an entry ending in
    ``/*`` allows every image below that prefix."""
    repo = image_repository(image)
    for entry in allowed:
        entry = entry.strip()
        if not entry:
            continue
        if entry.endswith("/*"):
            if repo.startswith(entry[:-1]):
                return True
        elif entry in (image, repo):
            return True
    return False


def not_allowed(image: str) -> str:
    """The message for an image no allow-list entry lets run."""
    return (
        f"image {image!r} is not allowed: allow it with --allow-image {image_repository(image)} "
        "or allow_images in podium.toml"
    )


def input_problem(name: object) -> str | None:
    if not isinstance(name, str) or _INPUT.match(name) is None:
        return (
            f"input name {name!r} must be a plain name (letters, digits, _ and -): "
            f"it becomes the file {IN_DIR}/NAME.json"
        )
    return None


def env_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or _ENV.match(name) is None:
        return f"environment variable name {name!r} must be letters, digits and _, not starting with a digit"
    if name.startswith(RESERVED_ENV_PREFIX):
        return f"environment variable names starting with {RESERVED_ENV_PREFIX} are set by Podium"
    return None


def env_value_problem(value: str) -> str | None:
    """Values travel in an env file, one per line: no line breaks or NUL bytes (the value itself
    is never quoted in the message: it may be a secret)."""
    if any(c in value for c in "\n\r\0"):
        return "the value holds a line break or NUL byte, which an environment variable cannot carry"
    return None


def workdir_problem(path: object) -> str | None:
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path or "\n" in path:
        return f"workdir must be an absolute path inside the container, got {path!r}"
    return None


def network_problem(network: object) -> str | None:
    if network not in NETWORKS:
        return f"network must be 'none' (the default: no network) or 'host', got {network!r}"
    return None


def container_problems(spec: TaskSpec) -> list[tuple[str, str]]:
    """``(field, message)`` for what is wrong with a container ``TaskSpec`` as a whole."""
    out: list[tuple[str, str]] = []
    image = spec.config.get("image")
    if image is None:
        out.append(("image", "a container task needs an image"))
    elif (msg := image_problem(image)) is not None:
        out.append(("image", msg))
    out += [("inputs", m) for n in spec.args if (m := input_problem(n)) is not None]
    if spec.isolation != "thread":
        out.append(("isolation", "a container task is isolated by its container: leave isolation unset"))
    return out
