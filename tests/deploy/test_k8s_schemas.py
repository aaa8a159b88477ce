"""The Kubernetes manifests against the schemas an API server would apply, offline.

- Core kinds (Namespace, ServiceAccount, ConfigMap, PVC, Service) with `kubernetes-validate`'s
  bundled OpenAPI schemas of Kubernetes K8S_VERSION, strictly (unknown fields are errors, as with
  `kubectl apply --validate=strict`). The pod templates inside the Ray objects are checked the same
  way as Pods, and their metadata as ObjectMeta.
- RayCluster / RayJob with jsonschema against the openAPIV3Schema of the served version of
  KubeRay's CRDs (read from $PODIUM_K8S_SCHEMAS or ../shared/k8s), closed like a structural
  schema under strict field validation. The CRDs' CEL rules are not evaluated: a test asserts the
  manifests set none of the fields they guard.
- The checks KubeRay's operator makes before it acts (ray-operator/controllers/ray/utils/
  validation.go), which no schema holds: DNS-1035 names and their lengths, resources given once,
  labels where KubeRay reads them, token auth only with Ray >= 2.52, RayJob TTL and selector rules.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_files import k8s_schema_dir, load_manifests, objects

K8S_VERSION = "1.33.0"
CORE_KINDS = {"Namespace", "ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Service"}
CUSTOM_KINDS = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}
DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def kv_validate(obj: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def closed(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema in which every object with declared properties rejects
    others, unless it says it keeps unknown fields (as the API server prunes or, with strict
    field validation, rejects them)."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in schema:
        out["properties"] = {k: closed(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            out[key] = closed(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            out[key] = [closed(s) for s in schema[key]]
    return out


@functools.cache
def load_crd(path: Path) -> dict[str, Any]:
    # the CRDs are about 1 MB of YAML each: the C loader reads them in a fraction of the time
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


@functools.cache
def closed_schema(path: Path, version: str) -> dict[str, Any]:
    found = [v for v in load_crd(path)["spec"]["versions"] if v["name"] == version]
    return closed(found[0]["schema"]["openAPIV3Schema"])


def crd_path(kind: str) -> Path:
    crds = k8s_schema_dir()
    if crds is None:
        pytest.skip("KubeRay CRDs not found: set PODIUM_K8S_SCHEMAS or put shared/k8s beside the repository")
    return crds / CUSTOM_KINDS[kind]


def crd_version(kind: str, api_version: str) -> dict[str, Any]:
    crd = load_crd(crd_path(kind))
    group, _, version = api_version.partition("/")
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    found = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert found, f"{kind}: the CRD has no version {version}"
    assert found[0]["served"], f"{kind} {version} is not served by KubeRay"
    return found[0]


def crd_errors(obj: dict[str, Any]) -> list[str]:
    crd_version(obj["kind"], obj["apiVersion"])  # the version exists and is served
    schema = closed_schema(crd_path(obj["kind"]), obj["apiVersion"].partition("/")[2])
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


def guarded_paths(schema: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths (property names, "[]" for list items) of the schema nodes that carry CEL rules."""
    found = [path] if "x-kubernetes-validations" in schema else []
    for name, sub in schema.get("properties", {}).items():
        found += guarded_paths(sub, (*path, name))
    if isinstance(schema.get("items"), dict):
        found += guarded_paths(schema["items"], (*path, "[]"))
    return found


def reaches(obj: Any, path: tuple[str, ...]) -> bool:
    if not path:
        return True
    if path[0] == "[]":
        return isinstance(obj, list) and any(reaches(x, path[1:]) for x in obj)
    return isinstance(obj, dict) and path[0] in obj and reaches(obj[path[0]], path[1:])


def pod_templates(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    spec = obj["spec"]
    if obj["kind"] == "RayCluster":
        found = [("head", spec["headGroupSpec"]["template"])]
        return found + [(g["groupName"], g["template"]) for g in spec.get("workerGroupSpecs", [])]
    return [("submitter", spec["submitterPodTemplate"])] if "submitterPodTemplate" in spec else []


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def operator_problems(obj: dict[str, Any]) -> list[str]:
    """What KubeRay's operator rejects before it creates anything (see the module docstring)."""
    kind, name, spec, problems = obj["kind"], obj["metadata"]["name"], obj["spec"], []
    limit = 53 if kind == "RayCluster" else 47
    if len(name) > limit or not DNS1035.fullmatch(name):
        problems.append(f"{kind} name {name!r}: a DNS-1035 label of at most {limit} characters")
    if kind == "RayCluster":
        groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec["workerGroupSpecs"]]
        for group, g in groups:
            params = g.get("rayStartParams", {})
            if "labels" in params:
                problems.append(f"{group}: rayStartParams.labels is refused; use the group's labels field")
            if any(params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources")) and g.get(
                "resources"
            ):
                problems.append(f"{group}: resources set in both rayStartParams and resources")
        if spec.get("authOptions", {}).get("mode") == "token" and version_tuple(
            spec.get("rayVersion", "0")
        ) < (2, 52, 0):
            problems.append("authOptions.mode token needs rayVersion 2.52.0 or later")
    if kind == "RayJob":
        selector = spec.get("clusterSelector") or {}
        shutdown = spec.get("shutdownAfterJobFinishes", False)
        if not selector and "rayClusterSpec" not in spec:
            problems.append("one of rayClusterSpec or clusterSelector must be set")
        if selector and not selector.get("ray.io/cluster"):
            problems.append("clusterSelector needs a non-empty ray.io/cluster")
        if selector and spec.get("submissionMode") == "SidecarMode":
            problems.append("clusterSelector is not supported in SidecarMode")
        if spec.get("ttlSecondsAfterFinished", 0) > 0 and not shutdown:
            problems.append("ttlSecondsAfterFinished needs shutdownAfterJobFinishes: true")
        if spec.get("suspend") and (selector or not shutdown):
            problems.append("suspend needs shutdownAfterJobFinishes and no clusterSelector")
        if spec.get("activeDeadlineSeconds", 1) <= 0 or spec.get("backoffLimit", 0) < 0:
            problems.append("activeDeadlineSeconds must be positive and backoffLimit not negative")
        yaml.safe_load(spec.get("runtimeEnvYAML", "") or "{}")
    return problems


def manifests() -> list[tuple[str, dict[str, Any]]]:
    return [(f, d) for f, docs in load_manifests().items() for d in docs if d.get("kind") != "Kustomization"]


# --- the manifests ------------------------------------------------------------------------------
def test_every_manifest_is_a_known_kind() -> None:
    kinds = {d["kind"] for _, d in manifests()}
    assert kinds == CORE_KINDS | set(CUSTOM_KINDS)


@pytest.mark.parametrize(("name", "obj"), [m for m in manifests() if m[1]["kind"] in CORE_KINDS])
def test_core_objects_validate_against_kubernetes(name: str, obj: dict[str, Any], no_network: None) -> None:
    kv_validate(obj)


@pytest.mark.parametrize("kind", sorted(CUSTOM_KINDS))
def test_ray_objects_validate_against_the_kuberay_crds(kind: str, no_network: None) -> None:
    for obj in objects(kind):
        assert crd_errors(obj) == []
        # what the CRD leaves open, Kubernetes' own schemas check
        kv_validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]})
        for _group, template in pod_templates(obj):
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": template.get("metadata", {})}
            kv_validate({**pod, "spec": template["spec"]})


@pytest.mark.parametrize("kind", sorted(CUSTOM_KINDS))
def test_ray_objects_set_no_field_guarded_by_an_unevaluated_cel_rule(kind: str) -> None:
    for obj in objects(kind):
        schema = crd_version(kind, obj["apiVersion"])["schema"]["openAPIV3Schema"]
        paths = guarded_paths(schema)
        assert paths, "expected the CRD to carry CEL rules"
        assert [p for p in paths if reaches(obj, p)] == []


@pytest.mark.parametrize("kind", sorted(CUSTOM_KINDS))
def test_ray_objects_pass_the_operators_own_checks(kind: str) -> None:
    for obj in objects(kind):
        assert operator_problems(obj) == []


# --- the validators catch mistakes --------------------------------------------------------------
def edited(kind: str, edit: Any) -> dict[str, Any]:
    obj = copy.deepcopy(objects(kind)[0])
    edit(obj)
    return obj


@pytest.mark.parametrize(
    ("kind", "edit", "expect"),
    [
        ("RayCluster", lambda o: o["spec"]["headGroupSpec"].update(rayStartParam={}), "rayStartParam"),
        ("RayCluster", lambda o: o["spec"]["workerGroupSpecs"][0].update(replicas="two"), "'two'"),
        ("RayCluster", lambda o: o["spec"].update(authOptions={"mode": "tokens"}), "'tokens'"),
        ("RayCluster", lambda o: o["spec"]["workerGroupSpecs"][0].pop("groupName"), "groupName"),
        (
            "RayCluster",
            lambda o: o["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].update(imagePull="x"),
            "imagePull",
        ),
        ("RayJob", lambda o: o["spec"].update(entrypoint=["podium", "run"]), "is not of type 'string'"),
        ("RayJob", lambda o: o["spec"].update(clusterSelectors={}), "clusterSelectors"),
    ],
)
def test_the_crd_check_catches_a_broken_ray_object(kind: str, edit: Any, expect: str) -> None:
    errors = crd_errors(edited(kind, edit))
    assert any(expect in e for e in errors), errors


def test_the_core_check_catches_broken_objects(no_network: None) -> None:
    import kubernetes_validate

    service = copy.deepcopy(objects("Service")[0])
    service["spec"]["ports"][0]["prot"] = 8765
    with pytest.raises(kubernetes_validate.ValidationError, match="prot"):
        kv_validate(service)
    template = objects("RayCluster")[0]["spec"]["headGroupSpec"]["template"]
    spec = copy.deepcopy(template["spec"])
    spec["containers"][0]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="runAsNonroot"):
        kv_validate({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": spec})


@pytest.mark.parametrize(
    ("kind", "edit", "expect"),
    [
        ("RayCluster", lambda o: o["metadata"].update(name="Podium"), "DNS-1035"),
        ("RayJob", lambda o: o["metadata"].update(name="p" * 48), "DNS-1035"),
        (
            "RayCluster",
            lambda o: o["spec"]["workerGroupSpecs"][0]["rayStartParams"].update(labels="a=b"),
            "labels",
        ),
        ("RayCluster", lambda o: o["spec"]["headGroupSpec"].update(resources={"CPU": "1"}), "both"),
        ("RayCluster", lambda o: o["spec"].update(rayVersion="2.51.1"), "2.52.0"),
        ("RayJob", lambda o: o["spec"].update(ttlSecondsAfterFinished=60), "shutdownAfterJobFinishes"),
        ("RayJob", lambda o: o["spec"].update(clusterSelector={"app": "x"}), "ray.io/cluster"),
        ("RayJob", lambda o: o["spec"].update(suspend=True), "suspend"),
    ],
)
def test_the_operator_check_catches_what_kuberay_refuses(kind: str, edit: Any, expect: str) -> None:
    problems = operator_problems(edited(kind, edit))
    assert any(expect in p for p in problems), problems


def test_a_missing_crd_directory_is_a_skip_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PODIUM_K8S_SCHEMAS", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="PODIUM_K8S_SCHEMAS"):
        crd_version("RayCluster", "ray.io/v1")
