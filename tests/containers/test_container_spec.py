"""Container tasks as specs (YAML and Python) and the image allow-list; runtime detection.
None of these need a container runtime."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import podium
from podium.errors import SpecError, TaskFailedError
from podium.executors import container
from podium.executors.container_runtime import ContainerRuntimeError, detect
from podium.load import load_source, load_workflow
from podium.load.config import load_config
from podium.load.schema import json_schema
from podium.load.spec import load_spec
from podium.model import Const, Param, Ref
from podium.model.container import image_allowed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "specs" / "container.yaml"
IMG = "localhost/podium-busybox:1"


def load(text: str, images: tuple[str, ...] = ("localhost/podium-busybox",)) -> podium.Workflow:
    return load_spec(textwrap.dedent(text).encode(), "spec.yaml", allow_images=images)


def problems(text: str, images: tuple[str, ...] = ("localhost/podium-busybox",)) -> str:
    with pytest.raises(SpecError) as e:
        load(text, images)
    return str(e.value)


@podium.flow(name="container")
def python_twin(n: int = 5):
    count = podium.container(
        IMG,
        [
            "/bin/sh",
            "-c",
            'printf "{\\"values\\": [%s]}" "$(seq -s, 1 $(cat /podium/in/n.json))" > /podium/out/result.json',
        ],
        inputs={"n": n},
        env={"GREETING": "hello"},
        name="count",
        cpu=0.5,
        memory="64MiB",
        timeout="1m",
    )
    double = podium.container(
        IMG,
        ["/bin/sh", "-c", "echo $(( $(cat /podium/in/x.json) * 2 )) > /podium/out/result.json"],
        inputs={"x": podium.each(count["values"])},
        name="double",
    )
    podium.shell(["echo", podium.template("doubled: {}", double)], name="report")


def test_yaml_and_python_build_equal_container_workflows() -> None:
    spec = load_workflow(EXAMPLE, allow_images=["localhost/podium-busybox"], allow_programs=["echo"]).workflow
    assert spec == python_twin.workflow
    count, double = spec.tasks["count"], spec.tasks["double"]
    assert count.kind == "container" and count.config["image"] == IMG
    assert count.args == {"n": Param("n")} and count.timeout == 60.0
    assert double.args == {"x": Ref("count", ("values",))} and double.map_over == "x"
    assert "network" not in count.config  # off: the default is not written down


def test_the_example_spec_matches_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from podium.load.yamlsafe import read_document

    doc = read_document(EXAMPLE.read_bytes(), EXAMPLE.name)
    validator = jsonschema.Draft202012Validator(json.loads(json.dumps(json_schema())))
    assert [e.message for e in validator.iter_errors(doc.data)] == []
    bad = {"tasks": {"a": {"kind": "container", "image": IMG, "network": "bridge"}}}
    assert list(validator.iter_errors(bad))


def test_image_key_alone_makes_a_container_task_and_literal_inputs_are_consts() -> None:
    wf = load(f"tasks: {{a: {{image: '{IMG}', inputs: {{k: [1, 2]}}, network: host}}}}")
    assert wf.tasks["a"].kind == "container" and wf.tasks["a"].args == {"k": Const([1, 2])}
    assert wf.tasks["a"].config["network"] == "host"


# -- the allow-list ----------------------------------------------------------------------------
def test_an_image_not_allowed_is_refused_with_its_position_and_the_fix() -> None:
    msg = problems(f"tasks:\n  a: {{kind: container, image: '{IMG}'}}\n", images=())
    assert msg == (
        f"spec.yaml:2:31: tasks.a.image: image '{IMG}' is not allowed: allow it with --allow-image "
        "localhost/podium-busybox or allow_images in podium.toml"
    )


@pytest.mark.parametrize(
    ("image", "entries", "ok"),
    [
        ("localhost/a:1", ["localhost/a"], True),
        ("localhost/a:1", ["localhost/a:1"], True),
        ("localhost/a:2", ["localhost/a:1"], False),
        ("localhost/ab:1", ["localhost/a"], False),
        ("reg.io:5000/team/x:1", ["reg.io:5000/team/*"], True),
        ("reg.io:5000/teamx/x:1", ["reg.io:5000/team/*"], False),
        ("busybox:1", ["busybox"], True),
        ("busybox", [], False),
    ],
)
def test_allow_list_entries(image: str, entries: list[str], ok: bool) -> None:
    assert image_allowed(image, entries) is ok


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("--privileged", "is not an image reference"),
        ("-v/:/host", "is not an image reference"),
        ("a b", "is not an image reference"),
        ("${params.image}", "must be written out"),
        ("localhost/x:${params.tag}", "must be written out"),
    ],
)
def test_images_that_are_options_or_computed_are_refused(image: str, expected: str) -> None:
    """An image is never read as a runtime option, and a param never picks it."""
    msg = problems(
        f"params: {{image: str, tag: str}}\ntasks:\n  a: {{kind: container, image: '{image}'}}\n",
        images=("*", image),
    )
    assert expected in msg


def test_allow_images_from_podium_toml_and_kept_for_resume(tmp_path: Path) -> None:
    toml = 'allow_images = ["localhost/podium-busybox"]\nallow_programs = ["echo"]\n'
    (tmp_path / "podium.toml").write_text(toml)
    spec = tmp_path / "c.yaml"
    spec.write_text(EXAMPLE.read_text())
    assert load_config(tmp_path).policy.images == ("localhost/podium-busybox",)
    loaded = load_workflow(spec, cwd=tmp_path)
    (tmp_path / "podium.toml").unlink()  # a resume gets what the run was granted, not today's file
    assert load_source(loaded.source) == loaded.workflow
    (tmp_path / "podium.toml").write_text("allow_images = [1]\n")
    with pytest.raises(SpecError, match="allow_images: expected a list of image names"):
        load_config(tmp_path)


def test_cli_validate_refuses_then_accepts_with_allow_image(tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text(EXAMPLE.read_text())
    cmd = [sys.executable, "-m", "podium", "validate", str(spec), "--allow-program", "echo"]
    refused = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "is not allowed: allow it with --allow-image localhost/podium-busybox" in refused.stderr
    ok = subprocess.run(
        [*cmd, "--allow-image", "localhost/podium-busybox"], cwd=tmp_path, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    drawn = subprocess.run(
        [
            *cmd[:3],
            "graph",
            str(spec),
            "--allow-image",
            "localhost/podium-busybox",
            "--allow-program",
            "echo",
        ],
        capture_output=True,
        text=True,
    )
    assert "double<br/>container localhost/podium-busybox:1<br/>map over x" in drawn.stdout


# -- other settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{kind: container}", "a container task needs 'image:'"),
        (f"{{image: '{IMG}', inputs: {{'../x': 1}}}}", "input name '../x' must be a plain name"),
        (f"{{image: '{IMG}', env: {{PODIUM_TASK_ID: x}}}}", "starting with PODIUM_ are set by Podium"),
        (f"{{image: '{IMG}', env: {{'A=B': x}}}}", "environment variable name 'A=B'"),
        (f"{{image: '{IMG}', network: bridge}}", "network must be 'none'"),
        (f"{{image: '{IMG}', workdir: tmp}}", "workdir must be an absolute path"),
        (f"{{image: '{IMG}', isolation: process}}", "isolated by its container"),
        (f"{{image: '{IMG}', argv: 'sh -c x'}}", "expected a list of strings"),
        (f"{{image: '{IMG}', inputs: {{a: 1}}, map: b}}", "map names 'b', which is not an input"),
        (f"{{kind: container, image: '{IMG}', url: x}}", "key 'url' does not apply to a container task"),
    ],
)
def test_bad_settings_are_reported_with_their_position(body: str, expected: str) -> None:
    msg = problems(f"tasks:\n  a: {body}\n")
    assert expected in msg and "spec.yaml:2:" in msg


def test_every_problem_is_reported_at_once() -> None:
    msg = problems(
        f"tasks:\n  a: {{image: '{IMG}', network: x, workdir: y, env: {{'1': z}}}}\n  b: {{image: nope/x}}\n"
    )
    assert msg.startswith("4 problems:")


def test_python_api_reports_bad_settings() -> None:
    @podium.flow
    def bad():
        podium.container("--privileged", ["x"], network="bridge", env={"PODIUM_X": "1"}, name="c")

    with pytest.raises(SpecError) as e:
        bad.build()
    text = str(e.value)
    assert "is not an image reference" in text and "network must be" in text and "PODIUM_" in text


# -- runtime detection ------------------------------------------------------------------------
def test_no_runtime_gives_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PODIUM_CONTAINER_RUNTIME", raising=False)
    with pytest.raises(ContainerRuntimeError) as e:
        detect()
    assert str(e.value) == (
        "no usable container runtime: podman is not installed; docker is not installed. "
        "Install Podman (apt-get install podman runc) or start a Docker daemon"
    )
    call = _call()
    with pytest.raises(TaskFailedError) as failed:
        container.run(call)
    assert failed.value.record.type == "ContainerRuntimeError" and not failed.value.record.retryable
    assert "\n" not in failed.value.record.message


def test_docker_without_a_daemon_is_not_usable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "docker"  # a client whose daemon is down, as docker prints it
    fake.write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PODIUM_CONTAINER_RUNTIME", "auto")
    with pytest.raises(ContainerRuntimeError, match=r"docker's daemon does not answer \(Cannot connect"):
        detect()


def test_bad_runtime_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_CONTAINER_RUNTIME", "lxc")
    with pytest.raises(ContainerRuntimeError, match="PODIUM_CONTAINER_RUNTIME='lxc' is not a container"):
        detect()
    if os.path.exists("/usr/bin/podman"):
        monkeypatch.setenv("PODIUM_CONTAINER_RUNTIME", "podman")
        monkeypatch.setenv("PODIUM_CONTAINER_ROOT", "/tmp/" + "x" * 60)
        with pytest.raises(ContainerRuntimeError, match="at most 50 characters"):
            detect()


def _call() -> podium.model.TaskCall:  # type: ignore[name-defined]
    from podium.model import Resources, TaskCall, TaskSpec

    spec = TaskSpec(name="c", kind="container", config={"image": IMG})
    return TaskCall("r", "c", 1, spec, {}, spec.config, Resources.of())
