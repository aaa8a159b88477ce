"""The Kubernetes manifests fit together and with Podium: names that refer to each other exist,
every pod runs the project's image as its unprivileged user, the Service reaches `podium server`,
the RayJob's entrypoint is a command line `podium run` accepts, every `ray start` parameter is an
option Ray accepts, and the flow, cluster file and podium.toml in the ConfigMap load, validate
and run with the real `podium` command.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import (
    K8S,
    PODIUM_UID,
    load_manifests,
    objects,
    one,
    podium_accepts,
    project_version,
    ray_start_params,
)

from podium.cli.run import run_cmd

CLUSTER = one("RayCluster")
HEAD = CLUSTER["spec"]["headGroupSpec"]
HEAD_POD = HEAD["template"]["spec"]
WORKERS = CLUSTER["spec"]["workerGroupSpecs"]
JOB = one("RayJob")


def pods() -> list[tuple[str, dict[str, Any]]]:
    found = [("head", HEAD["template"])] + [(g["groupName"], g["template"]) for g in WORKERS]
    return [*found, ("submitter", JOB["spec"]["submitterPodTemplate"])]


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["containers"] if c["name"] == name)


def mount(pod: dict[str, Any], ctr: dict[str, Any], kind: str) -> tuple[dict[str, Any], str]:
    """The volume of a kind (persistentVolumeClaim, configMap) a container mounts, and where."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    for m in ctr.get("volumeMounts", []):
        if kind in volumes[m["name"]]:
            return volumes[m["name"]][kind], m["mountPath"]
    raise AssertionError(f"{ctr['name']} mounts no {kind}")


def env(ctr: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in ctr.get("env", [])}


def entrypoint() -> list[str]:
    """The RayJob entrypoint as argv. KubeRay's submitter pastes it unquoted into a bash command
    line (`ray job submit ... -- ENTRYPOINT ; ...`), so a shell operator in it would run on the
    submitter pod: it must be one plain command."""
    text = JOB["spec"]["entrypoint"]
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    words = list(lexer)
    operators = [w for w in words if w and set(w) <= set("&|;<>()")]
    assert not operators and "`" not in text and "$(" not in text, f"shell syntax in the entrypoint: {text}"
    return shlex.split(text)


def test_every_pod_runs_the_project_image_unprivileged() -> None:
    image = f"registry.example.com/podium:{project_version()}"
    account = one("ServiceAccount")["metadata"]["name"]
    for group, template in pods():
        spec = template["spec"]
        sc = spec["securityContext"]
        assert (sc["runAsNonRoot"], sc["runAsUser"], sc["seccompProfile"]["type"]) == (
            True,
            PODIUM_UID,
            "RuntimeDefault",
        ), group
        assert spec["serviceAccountName"] == account and spec["automountServiceAccountToken"] is False
        for ctr in spec["containers"]:
            assert ctr["image"] == image, (group, ctr["name"])
            assert ctr["securityContext"]["allowPrivilegeEscalation"] is False
            assert ctr["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert ctr["resources"]["limits"] and ctr["resources"]["requests"], (group, ctr["name"])


def test_every_object_lives_in_the_namespace() -> None:
    namespace = one("Namespace")["metadata"]["name"]
    for name, docs in load_manifests().items():
        for doc in docs:
            if doc["kind"] not in ("Namespace", "Kustomization"):
                assert doc["metadata"]["namespace"] == namespace, name


def test_the_ray_container_comes_first_and_the_head_runs_no_tasks() -> None:
    # KubeRay starts Ray in the first container of each pod template
    assert HEAD_POD["containers"][0]["name"] == "ray-head"
    assert {p["name"]: p["containerPort"] for p in HEAD_POD["containers"][0]["ports"]} == {
        "gcs-server": 6379,
        "dashboard": 8265,
        "client": 10001,
    }
    assert all(g["template"]["spec"]["containers"][0]["name"] == "ray-worker" for g in WORKERS)
    assert HEAD["rayStartParams"]["num-cpus"] == "0"


def test_ray_start_parameters_are_options_ray_accepts() -> None:
    # KubeRay turns each `key: value` into `--key=value` on `ray start`, and a group's labels
    # into --labels (checked here with Ray's own label syntax)
    commands = []
    for group in [HEAD, *WORKERS]:
        args = [f"--{k}={v}" for k, v in group.get("rayStartParams", {}).items()]
        labels = ",".join(f"{k}={v}" for k, v in group.get("labels", {}).items())
        commands.append([*args, *([f"--labels={labels}"] if labels else []), "--block"])
    parsed = ray_start_params(*commands)
    assert [p["labels"] for p in parsed] == [g.get("labels", {}) for g in [HEAD, *WORKERS]]
    with pytest.raises(AssertionError, match="No such option"):
        ray_start_params(["--num-cpu=0"])
    with pytest.raises(AssertionError, match="label"):
        ray_start_params(["--labels=podium pool=cpu"])


def test_worker_labels_are_what_the_cluster_file_prices() -> None:
    config = one("ConfigMap")["data"]
    priced = yaml.safe_load(config["cluster.yaml"])["nodes"]
    for group in WORKERS:
        entries = [n for n in priced if n["labels"].items() <= group["labels"].items()]
        assert len(entries) == 1, group["groupName"]
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert str(entries[0]["capacity"]["cpu"]) == limits["cpu"]
        assert entries[0]["capacity"]["memory"].replace("GiB", "Gi") == limits["memory"]


def test_the_service_reaches_podium_server_on_the_head_only() -> None:
    service = one("Service")
    port = service["spec"]["ports"][0]
    server = container(HEAD_POD, "podium-server")
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert port["port"] == 8765 and ports[port["targetPort"]] == 8765
    selector = service["spec"]["selector"].items()
    assert selector <= HEAD["template"]["metadata"]["labels"].items()
    assert not any(selector <= g["template"]["metadata"]["labels"].items() for g in WORKERS)
    assert server["args"][:1] == ["server"] and server["args"][-2:] == ["--port", "8765"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/healthz", "port": port["targetPort"]}


def test_podium_server_arguments_are_accepted_by_podium() -> None:
    server = container(HEAD_POD, "podium-server")
    assert server["command"] == ["tini", "--", "podium"]
    podium_accepts(server["args"])


def test_the_head_shares_one_store_and_one_configuration() -> None:
    claim = one("PersistentVolumeClaim")["metadata"]["name"]
    config = one("ConfigMap")["metadata"]["name"]
    for name in ("ray-head", "podium-server"):
        ctr = container(HEAD_POD, name)
        volume, state_dir = mount(HEAD_POD, ctr, "persistentVolumeClaim")
        assert volume["claimName"] == claim
        cfg, config_dir = mount(HEAD_POD, ctr, "configMap")
        assert cfg["name"] == config
        assert ctr["workingDir"] == config_dir  # podium.toml is read from the working directory
        assert env(ctr)["PODIUM_STORE"] == f"sqlite:///{state_dir}/podium.db"
    assert HEAD_POD["securityContext"]["fsGroup"] == PODIUM_UID  # the volume is writable by podium


def test_ray_token_auth_from_one_secret_and_no_secret_value_anywhere() -> None:
    secret = CLUSTER["spec"]["authOptions"]
    assert secret["mode"] == "token"
    submitter = JOB["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    ref = env(submitter)["RAY_AUTH_TOKEN"]["secretKeyRef"]
    assert ref == {"name": secret["secretName"], "key": "auth_token"}
    for _group, template in pods():
        for ctr in template["spec"]["containers"]:
            for name, value in env(ctr).items():
                if any(w in name for w in ("TOKEN", "PASSWORD", "SECRET")):
                    assert isinstance(value, dict) and "secretKeyRef" in value, (ctr["name"], name)
    assert not one("ConfigMap")["data"].keys() & {"auth_token", "token", "password"}


def test_the_rayjob_runs_podium_on_the_cluster_with_ray_auto() -> None:
    assert JOB["spec"]["clusterSelector"] == {"ray.io/cluster": CLUSTER["metadata"]["name"]}
    # no entrypoint resources: Ray runs the driver on the head, where the store is mounted
    assert not {"entrypointNumCpus", "entrypointNumGpus", "entrypointResources"} & JOB["spec"].keys()
    argv = entrypoint()
    # the driver runs in the head container's working directory: the configuration's mount
    _, config_dir = mount(HEAD_POD, HEAD_POD["containers"][0], "configMap")
    assert HEAD_POD["containers"][0]["workingDir"] == config_dir
    assert argv[:2] == ["podium", "run"]
    podium_accepts(argv[1:])  # the installed `podium` command, as the driver runs it
    with pytest.raises(AssertionError, match="No such option"):
        podium_accepts(["run", "--rayy", "auto", "flow.yaml"])
    params = run_cmd.make_context("run", argv[2:]).params
    assert params["ray_address"] == "auto"
    assert params["store_url"] is None  # from PODIUM_STORE: a URL with a password stays off the command line
    files = one("ConfigMap")["data"]
    assert {params["file"], params["cluster"], "podium.toml"} <= files.keys()
    assert params["run_id"]  # a resubmitted job resumes the same run


def test_an_entrypoint_with_shell_syntax_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    for text in ("cd /etc/podium && exec podium run flow.yaml", "podium run flow.yaml; echo done"):
        monkeypatch.setitem(JOB["spec"], "entrypoint", text)
        with pytest.raises(AssertionError, match="shell syntax"):
            entrypoint()


def test_the_configmap_flow_validates_and_runs_with_podium(tmp_path: Path) -> None:
    from podium.load.cluster import load_cluster
    from podium.load.config import load_config
    from podium.runtime.view import fold
    from podium.store import open_store

    for name, text in one("ConfigMap")["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert load_config(tmp_path).path == str(tmp_path / "podium.toml")
    assert [n.name for n in load_cluster(tmp_path / "cluster.yaml").nodes] == ["cpu-worker"]
    params = run_cmd.make_context("run", entrypoint()[2:]).params
    podium = [sys.executable, "-m", "podium"]
    checked = subprocess.run(
        [*podium, "validate", params["file"], "--cluster", params["cluster"], *_param_args(params)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    # the same run the RayJob starts, on this machine instead of Ray, with tiny shards
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    run = [*podium, "run", params["file"], "--cluster", params["cluster"], "--store", store]
    run += ["--no-progress", "--run-id", params["run_id"], "-p", "rounds=10"]
    ran = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    opened = open_store(store)
    try:
        assert opened.get_run(params["run_id"]).status == "succeeded"
        view = fold(opened.events(params["run_id"]))
    finally:
        opened.close()
    assert {t: v.state for t, v in view.tasks.items()} == dict.fromkeys(
        yaml.safe_load((tmp_path / params["file"]).read_text(encoding="utf-8"))["tasks"], "succeeded"
    )


def _param_args(params: dict[str, Any]) -> list[str]:
    return [a for p in params["params"] for a in ("-p", p)]


def test_kustomization_applies_every_long_lived_object() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "rayjob.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomization was checked by its file list only")
    built = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    rendered = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(built.stdout)}
    expected = {(d["kind"], d["metadata"]["name"]) for f in files for d in load_manifests()[f]}
    assert rendered == expected


def test_every_reference_resolves() -> None:
    for kind, field in (("PersistentVolumeClaim", "claimName"), ("ConfigMap", "name")):
        names = {o["metadata"]["name"] for o in objects(kind)}
        key = "persistentVolumeClaim" if kind == "PersistentVolumeClaim" else "configMap"
        for _group, template in pods():
            for volume in template["spec"].get("volumes", []):
                if key in volume:
                    assert volume[key][field] in names, volume


def test_the_guide_shows_the_files_and_the_entrypoint_as_they_are() -> None:
    guide = (K8S.parents[1] / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    for path in set(re.findall(r"deploy/[\w./-]+\w", guide)):
        assert (K8S.parents[1] / path).exists(), f"docs/kubernetes.md names {path}, which does not exist"
    shown = re.search(r"Its entrypoint is\n\n```bash\n(.*?)```", guide, re.S)
    assert shown, "docs/kubernetes.md should show the RayJob's entrypoint"
    assert shlex.split(shown.group(1).replace("\\\n", " ")) == entrypoint()
