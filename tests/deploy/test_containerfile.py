"""The Containerfile, checked statically (no container engine builds here: no registry is
reachable, so its public base image cannot be pulled).

Each property is a function from the Containerfile's text to a list of problems; the real file
must have none, and a broken copy of it must show the problem (so the checks bite).
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import shlex
from typing import Any

import pytest
from deploy_files import CONTAINERFILE, PODIUM_UID, REPO, one, podium_accepts

TEXT = CONTAINERFILE.read_text(encoding="utf-8")
SECRET_WORDS = re.compile(r"TOKEN|SECRET|PASSW|PASSWD|API_?KEY|PRIVATE|CREDENTIAL", re.I)


def parse(text: str) -> Any:
    from dockerfile_parse import DockerfileParser

    return DockerfileParser(fileobj=io.BytesIO(text.encode()))


def stages(text: str) -> list[list[dict[str, Any]]]:
    """Instructions per build stage (comments dropped)."""
    out: list[list[dict[str, Any]]] = []
    for ins in parse(text).structure:
        if ins["instruction"] == "FROM":
            out.append([])
        if out and ins["instruction"] != "COMMENT":
            out[-1].append(ins)
    return out


def final(text: str, instruction: str) -> list[str]:
    return [i["value"] for i in stages(text)[-1] if i["instruction"] == instruction]


# --- properties ---------------------------------------------------------------------------------
def base_problems(text: str) -> list[str]:
    """Every stage starts from one fully qualified image pinned to a patch release or a digest."""
    problems = []
    for image in parse(text).parent_images:
        name, _, tag = image.partition("@")[0].rpartition(":")
        if "@sha256:" not in image and not re.fullmatch(r"\d+\.\d+\.\d+[-\w.]*", tag):
            problems.append(f"base image {image!r} is not pinned to a patch release or a digest")
        if name.count("/") < 1 or "." not in name.split("/")[0]:
            problems.append(f"base image {image!r} does not name its registry")
    return problems


def user_problems(text: str) -> list[str]:
    users = final(text, "USER")
    if not users:
        return ["the final stage sets no USER: the image would run as root"]
    uid = users[-1].split(":")[0]
    if not uid.isdigit() or int(uid) == 0:
        return [f"USER {users[-1]!r}: use a numeric non-zero uid (Kubernetes checks runAsNonRoot by uid)"]
    if int(uid) != PODIUM_UID:
        return [f"USER {users[-1]!r}: the manifests run pods as uid {PODIUM_UID}"]
    return []


def entrypoint_problems(text: str) -> list[str]:
    entry = final(text, "ENTRYPOINT")
    if not entry:
        return ["no ENTRYPOINT"]
    try:
        argv = json.loads(entry[-1])
    except json.JSONDecodeError:
        return ["ENTRYPOINT is not in exec (JSON) form: signals would go to a shell, not podium"]
    return [] if argv and argv[-1] == "podium" else [f"ENTRYPOINT {argv} does not run podium"]


def healthcheck_problems(text: str) -> list[str]:
    checks = final(text, "HEALTHCHECK")
    ports = " ".join(final(text, "EXPOSE")).split()
    if not checks or checks[-1].strip().upper() == "NONE":
        return ["no HEALTHCHECK"]
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)['\"]", checks[-1])
    if not url:
        return [f"HEALTHCHECK probes no local URL: {checks[-1]}"]
    problems = [] if url.group(1) in ports else [f"HEALTHCHECK port {url.group(1)} is not EXPOSEd"]
    if url.group(2) != "/healthz":
        problems.append(f"HEALTHCHECK probes {url.group(2)}, not the server's unauthenticated /healthz")
    return problems


def secret_problems(text: str) -> list[str]:
    """No secret values baked in: no ENV/ARG/LABEL holding one, no ADD (it fetches URLs), no
    copied keys or dotfiles."""
    problems = []
    for ins in parse(text).structure:
        kind, value = ins["instruction"], ins["value"]
        if kind in ("ENV", "ARG", "LABEL"):
            for word in shlex.split(value):
                key, eq, val = word.partition("=")
                if SECRET_WORDS.search(key) and eq and val:
                    problems.append(f"line {ins['startline'] + 1}: {kind} {key} holds a value")
        if kind == "ADD":
            problems.append(f"line {ins['startline'] + 1}: use COPY, not ADD")
        if kind == "COPY" and re.search(r"(^|\s)(\.env|\S*id_rsa|\S*\.pem|\S*\.key|\.git)\b", value):
            problems.append(f"line {ins['startline'] + 1}: COPY {value!r} copies a secret or the git history")
    return problems


def ignored(path: str, patterns: list[str]) -> bool:
    """.containerignore semantics for the patterns used: the last matching line wins, `!` admits."""
    verdict = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.removeprefix("**/")) for p in prefixes):
            verdict = not neg
    return verdict


def ignore_patterns() -> list[str]:
    lines = (REPO / ".containerignore").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def context_problems(text: str, patterns: list[str]) -> list[str]:
    """Every COPY source from the build context exists and is not excluded by .containerignore."""
    problems = []
    for ins in parse(text).structure:
        if ins["instruction"] != "COPY" or "--from=" in ins["value"]:
            continue
        for src in shlex.split(ins["value"])[:-1]:
            if not (REPO / src).exists():
                problems.append(f"COPY {src}: no such file in the repository")
            elif ignored(src, patterns):
                problems.append(f"COPY {src}: excluded from the build context by .containerignore")
    return problems


# --- the real file ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "check", [base_problems, user_problems, entrypoint_problems, healthcheck_problems, secret_problems]
)
def test_containerfile_has_the_property(check: Any) -> None:
    assert check(TEXT) == []


def test_the_build_context_holds_what_the_copies_need_and_nothing_private() -> None:
    patterns = ignore_patterns()
    assert context_problems(TEXT, patterns) == []
    for private in (".venv/bin/python", ".git/config", ".podium/podium.db", ".env", "tests/x.py", "x.pem"):
        assert ignored(private, patterns), f"{private} would be sent to the build"
    assert not ignored("src/podium/__init__.py", patterns)
    assert ignored("src/podium/__pycache__/x.pyc", patterns)


def test_two_stages_and_only_the_virtualenv_reaches_the_image() -> None:
    parts = stages(TEXT)
    assert len(parts) == 2
    copies = [i["value"] for i in parts[1] if i["instruction"] == "COPY"]
    assert copies == ["--from=build /opt/podium /opt/podium"]
    runtime_runs = " ".join(i["value"] for i in parts[1] if i["instruction"] == "RUN")
    for tool in ("gcc", "build-essential", "git", "curl"):
        assert not re.search(rf"\b{tool}\b", runtime_runs), f"{tool} installed in the runtime image"


def test_installs_podium_with_the_ray_and_server_extras_and_the_manifests_ray() -> None:
    parser = parse(TEXT)
    build = " ".join(i["value"] for i in stages(TEXT)[0])
    assert '"ray[default]==${RAY_VERSION}" ".[${PODIUM_EXTRAS}]"' in build
    args = dict(re.findall(r"ARG (\w+)=(\S+)", TEXT))
    assert set(args["PODIUM_EXTRAS"].split(",")) == {"ray", "server"}
    assert args["RAY_VERSION"] == one("RayCluster")["spec"]["rayVersion"]
    # the readme pyproject names must be in the context, or `pip install .` fails
    assert "README.md" in build.split()
    assert parser.envs["PODIUM_STORE"] == "sqlite:////var/lib/podium/podium.db"
    assert parser.envs["PATH"].startswith("/opt/podium/bin:")


def test_login_shells_find_ray_and_podium() -> None:
    # KubeRay runs `ray start` and `ray job submit` under `bash -lc`, and Debian's /etc/profile
    # sets PATH anew for login shells: only /etc/profile.d can put the virtualenv back
    runtime = " ".join(i["value"] for i in stages(TEXT)[-1] if i["instruction"] == "RUN")
    assert re.search(r"PATH=/opt/podium/bin:\$PATH; export PATH' > /etc/profile\.d/\w+\.sh", runtime)


def test_default_command_is_a_podium_command() -> None:
    podium_accepts(json.loads(final(TEXT, "CMD")[-1]))


# --- the checks bite ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "check", "expect"),
    [
        ("python:3.11.7-slim-bookworm", "python:3.11-slim", base_problems, "not pinned"),
        ("python:3.11.7-slim-bookworm", "python:latest", base_problems, "not pinned"),
        ("docker.io/library/python", "python", base_problems, "registry"),
        ("USER 1000:1000", "USER root", user_problems, "numeric non-zero"),
        ("USER 1000:1000", "USER 0", user_problems, "numeric non-zero"),
        ("USER 1000:1000\n", "", user_problems, "as root"),
        ('ENTRYPOINT ["tini", "--", "podium"]', "ENTRYPOINT tini -- podium", entrypoint_problems, "exec"),
        ('ENTRYPOINT ["tini", "--", "podium"]', 'ENTRYPOINT ["ray"]', entrypoint_problems, "not run"),
        ("EXPOSE 8765", "EXPOSE 9000", healthcheck_problems, "not EXPOSEd"),
        ("8765/healthz", "8765/api/runs", healthcheck_problems, "/healthz"),
        ("RAY_USAGE_STATS_ENABLED=0", "RAY_AUTH_TOKEN=0123abcd", secret_problems, "holds a value"),
        ("COPY src ./src", "ADD src ./src", secret_problems, "ADD"),
        ("COPY src ./src", "COPY .env ./src", secret_problems, "secret"),
    ],
)
def test_a_broken_containerfile_is_caught(old: str, new: str, check: Any, expect: str) -> None:
    assert old in TEXT
    problems = check(TEXT.replace(old, new))
    assert any(expect in p for p in problems), problems


def test_a_copy_of_an_ignored_or_missing_path_is_caught() -> None:
    patterns = ignore_patterns()
    assert context_problems(TEXT.replace("COPY src ./src", "COPY tests ./tests"), patterns) == [
        "COPY tests: excluded from the build context by .containerignore"
    ]
    assert context_problems(TEXT.replace("COPY src ./src", "COPY lib ./lib"), patterns) == [
        "COPY lib: no such file in the repository"
    ]
