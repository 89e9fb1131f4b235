"""The manifests CD applies, rendered as `render-manifests` renders them and checked offline:
every core object against Kubernetes' own schemas (kubernetes-validate, strict: unknown fields
fail), the InferenceService against the KServe SDK's typed models, and the policies a
reviewer asks for. No cluster runs here; a real one belongs in a GitHub workflow (kind)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.delivery.manifests import ManifestError, render

PROJECT = Path(__file__).parents[2]
SLUG = "{{ cookiecutter.project_slug }}"
IMAGE = f"ghcr.io/acme/{SLUG}:1.4.0"
# The oldest Kubernetes the manifests promise to run on, and the kubectl (kustomize) they are
# rendered with here. A field added in a later version fails against it; newer clusters serve
# the same GA APIs (apps/v1, autoscaling/v2, policy/v1, networking.k8s.io/v1). Pinned, so a
# kubernetes-validate upgrade (its default is its newest schema) cannot change the result.
KUBERNETES_VERSION = "1.32"

# What CD applies: every overlay, and production's two slots (one with the switch; the
# committed live Service selects blue, so switching to green shows the switch at work).
RENDERINGS: dict[str, dict[str, Any]] = {
    "staging": {"overlay": "staging"},
    "production-blue": {"overlay": "production", "slot": "blue"},
    "production-green-switch": {"overlay": "production", "slot": "green", "switch": True},
    "canary": {"overlay": "canary"},
    "kserve": {"overlay": "kserve"},
}

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl is not installed: the manifests are rendered with `kubectl kustomize`",
)

Document = dict[str, Any]


def rendered(project: Path = PROJECT, **how: Any) -> list[Document]:
    text = render(how.pop("overlay"), how.pop("image", IMAGE), project=project, **how)
    return [document for document in yaml.safe_load_all(text) if document]


@pytest.fixture(scope="session")
def renderings() -> dict[str, list[Document]]:
    return {name: rendered(**how) for name, how in RENDERINGS.items()}


def named(document: Document) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


# --- the checks: each returns messages that name the object and the field ------------------


def schema_errors(document: Document) -> list[str]:
    """kubernetes-validate, strict; a custom resource goes to its own check."""
    if document["apiVersion"].startswith("serving.kserve.io/"):
        return kserve_errors(document)
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return [f"{named(document)}: {path}: {error.message}"]
    return []


_LIST = re.compile(r"(?:list|List)\[(?P<item>.+)\]")
_MAP = re.compile(r"(?:dict\(str, (?P<a>.+)\)|Dict\[str, (?P<b>.+)\])")
_SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "object": (object,),  # int-or-string fields (probe ports, intstr)
    "ResourceQuantity": (str, int, float),
    "datetime": (str,),
    "date": (str,),
}


def kserve_errors(document: Document) -> list[str]:
    """The InferenceService walked through the KServe SDK's own models: each key must be in its
    model's `attribute_map`, each value of the type `openapi_types` gives it."""
    errors = _walk(document, "V1beta1InferenceService", "")
    return [f"{named(document)}: {error}" for error in errors]


def _walk(value: Any, type_name: str, path: str) -> Iterator[str]:
    if match := _LIST.fullmatch(type_name):
        if not isinstance(value, list):
            yield f"{path}: expected a list, got {type(value).__name__}"
            return
        for index, item in enumerate(value):
            yield from _walk(item, match["item"], f"{path}[{index}]")
    elif match := _MAP.fullmatch(type_name):
        if not isinstance(value, dict):
            yield f"{path}: expected a mapping, got {type(value).__name__}"
            return
        for key, item in value.items():
            yield from _walk(item, match["a"] or match["b"], f"{path}.{key}")
    elif type_name in _SCALARS:
        # bool is an int in Python, not in Kubernetes.
        wrong_bool = isinstance(value, bool) and bool not in _SCALARS[type_name]
        if wrong_bool or not isinstance(value, _SCALARS[type_name]):
            yield f"{path}: expected {type_name}, got {type(value).__name__}"
    else:
        model = _model(type_name)
        if not isinstance(value, dict):
            yield f"{path}: expected an object ({type_name}), got {type(value).__name__}"
            return
        fields = {key: attribute for attribute, key in model.attribute_map.items()}
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in fields:
                yield f"{where}: unknown field"
            else:
                yield from _walk(item, model.openapi_types[fields[key]], where)


def _model(type_name: str) -> Any:
    """KServe's model of that name, or the Kubernetes client's (which KServe's models use)."""
    import kubernetes.client
    from kserve import models

    model = getattr(models, type_name, None) or getattr(kubernetes.client, type_name, None)
    if model is None:
        raise LookupError(f"{type_name}: neither kserve.models nor kubernetes.client has it")
    return model


def policy_errors(document: Document) -> list[str]:
    """Every pod: no service-account token; every container: non-root, read-only root file
    system, no privilege escalation, no capabilities, seccomp, requests and limits, both
    probes, and a pinned image."""
    pod = _pod_spec(document)
    if pod is None:
        return []
    errors = []
    if pod.get("automountServiceAccountToken") is not False:
        errors.append(f"{named(document)}: automountServiceAccountToken is not false")
    for container in pod["containers"]:
        where = f"{named(document)}: container {container['name']}"
        own = container.get("securityContext", {})
        effective = {**pod.get("securityContext", {}), **own}  # the container's own wins
        expected = {
            "runAsNonRoot": effective.get("runAsNonRoot") is True,
            "readOnlyRootFilesystem": own.get("readOnlyRootFilesystem") is True,
            "allowPrivilegeEscalation: false": own.get("allowPrivilegeEscalation") is False,
            "capabilities.drop ALL": "ALL" in own.get("capabilities", {}).get("drop", []),
            "seccompProfile RuntimeDefault": (
                effective.get("seccompProfile", {}).get("type") == "RuntimeDefault"
            ),
        }
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                expected[f"resources.{kind}.{resource}"] = resource in resources.get(kind, {})
        for probe in ("livenessProbe", "readinessProbe"):
            expected[probe] = probe in container
        errors += [f"{where}: {rule}: missing or wrong" for rule, ok in expected.items() if not ok]
        image = container["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "@" not in image and tag in ("", "latest"):
            errors.append(f"{where}: image {image}: no tag or `latest`, so no one build")
    return errors


def _pod_spec(document: Document) -> Document | None:
    if document["kind"] == "Deployment":
        spec: Document = document["spec"]["template"]["spec"]
        return spec
    if document["kind"] == "InferenceService":
        predictor: Document = document["spec"]["predictor"]
        return predictor
    return None


# --- the committed manifests pass -----------------------------------------------------------


@needs_kubectl
@pytest.mark.parametrize("rendering", RENDERINGS)
def test_every_object_passes_the_schemas_and_policies(
    renderings: dict[str, list[Document]], rendering: str
) -> None:
    documents = renderings[rendering]
    assert documents
    errors = [error for document in documents for error in schema_errors(document)]
    errors += [error for document in documents for error in policy_errors(document)]
    assert errors == []


@needs_kubectl
def test_the_interfaces_others_rely_on(renderings: dict[str, list[Document]]) -> None:
    for document in (d for documents in renderings.values() for d in documents):
        if document["kind"] != "Namespace":
            assert document["metadata"]["name"].startswith(SLUG)
            assert document["metadata"]["labels"]["app.kubernetes.io/name"] == SLUG
        for container in (_pod_spec(document) or {}).get("containers", []):
            assert container["image"] == IMAGE
            assert [port["containerPort"] for port in container["ports"]] == [8000]
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
            secrets = {
                variable["name"]: variable["valueFrom"]["secretKeyRef"]
                for variable in container["env"]
                if "secretKeyRef" in variable.get("valueFrom", {})
            }
            assert secrets == {
                name: {"name": f"{SLUG}-api-keys", "key": name}
                for name in ("API_KEY", "ADMIN_TOKEN")
            }


def _by_kind(documents: list[Document]) -> dict[str, list[Document]]:
    kinds: dict[str, list[Document]] = {}
    for document in documents:
        kinds.setdefault(document["kind"], []).append(document)
    return kinds


@needs_kubectl
def test_staging_is_one_pod_without_autoscaling(renderings: dict[str, list[Document]]) -> None:
    kinds = _by_kind(renderings["staging"])
    assert "HorizontalPodAutoscaler" not in kinds
    assert [d["spec"]["replicas"] for d in kinds["Deployment"]] == [1]
    assert {d["metadata"].get("namespace") for d in renderings["staging"]} == {
        None,  # the Namespace itself
        f"{SLUG}-staging",
    }


@needs_kubectl
def test_a_production_slot_leaves_the_other_slot_and_the_switch_alone(
    renderings: dict[str, list[Document]],
) -> None:
    blue = renderings["production-blue"]
    assert not [d for d in blue if d["metadata"].get("labels", {}).get("slot") == "green"]
    # Without --switch the live Service is not applied: traffic stays where it is.
    assert [named(d) for d in blue if d["kind"] in ("Deployment", "Service")] == [
        f"Service/{SLUG}-blue",
        f"Deployment/{SLUG}-blue",
    ]


@needs_kubectl
def test_the_switch_is_the_live_services_slot(renderings: dict[str, list[Document]]) -> None:
    documents = renderings["production-green-switch"]
    (live,) = (d for d in documents if named(d) == f"Service/{SLUG}")
    assert live["spec"]["selector"] == {"app.kubernetes.io/name": SLUG, "slot": "green"}
    assert not [d for d in documents if d["metadata"].get("labels", {}).get("slot") == "blue"]


@needs_kubectl
def test_the_canary_runs_beside_production_with_a_tenth_of_the_traffic(
    renderings: dict[str, list[Document]],
) -> None:
    kinds = _by_kind(renderings["canary"])
    (deployment,) = kinds["Deployment"]
    assert deployment["metadata"]["namespace"] == f"{SLUG}-production"
    assert deployment["spec"]["replicas"] == 1
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "SERVING_ROLE", "value": "canary"} in env
    (ingress,) = kinds["Ingress"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "10"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == f"{SLUG}-canary"
    assert "Namespace" not in kinds  # production's, not the canary's to change


@needs_kubectl
def test_the_inference_service_has_a_canary_share(renderings: dict[str, list[Document]]) -> None:
    (service,) = renderings["kserve"]
    assert service["spec"]["predictor"]["canaryTrafficPercent"] == 10


# --- a broken manifest fails, naming the object and the field --------------------------------


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    shutil.copytree(PROJECT / "deploy", tmp_path / "deploy")
    return tmp_path


def _plant(project: Path, file: str, old: str, new: str) -> None:
    path = project / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


BREAKAGES = [
    pytest.param(
        "deploy/k8s/base/deployment.yaml",
        "imagePullPolicy: IfNotPresent",
        "imagePullPolice: IfNotPresent",
        "staging",
        f"Deployment/{SLUG}: spec.template.spec.containers.0: Additional properties are not "
        "allowed ('imagePullPolice' was unexpected)",
        id="unknown-field",
    ),
    pytest.param(
        "deploy/k8s/base/hpa.yaml",
        "maxReplicas: 6",
        "maxReplicas: six",
        "production",
        f"HorizontalPodAutoscaler/{SLUG}-blue: spec.maxReplicas: 'six' is not of type 'integer'",
        id="wrong-type",
    ),
    pytest.param(
        "deploy/kserve/inferenceservice.yaml",
        "- containerPort: 8000",
        "- prots: 8000",
        "kserve",
        f"InferenceService/{SLUG}: spec.predictor.containers[0].ports[0].prots: unknown field",
        id="kserve-unknown-field",
    ),
    pytest.param(
        "deploy/kserve/inferenceservice.yaml",
        "canaryTrafficPercent: 10",
        'canaryTrafficPercent: "10"',
        "kserve",
        f"InferenceService/{SLUG}: spec.predictor.canaryTrafficPercent: expected int, got str",
        id="kserve-wrong-type",
    ),
    pytest.param(
        "deploy/k8s/base/deployment.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
        "staging",
        f"Deployment/{SLUG}: container api: readOnlyRootFilesystem: missing or wrong",
        id="policy",
    ),
]


@needs_kubectl
@pytest.mark.parametrize(("file", "old", "new", "overlay", "expected"), BREAKAGES)
def test_a_broken_manifest_fails_naming_the_object_and_field(
    project_copy: Path, file: str, old: str, new: str, overlay: str, expected: str
) -> None:
    _plant(project_copy, file, old, new)
    how = {"slot": "blue"} if overlay == "production" else {}
    documents = rendered(project_copy, overlay=overlay, **how)
    errors = [e for d in documents for e in schema_errors(d) + policy_errors(d)]
    assert errors == [expected]


def test_an_unpinned_image_is_a_policy_error() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": SLUG},
        "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "x/y:latest"}]}}},
    }
    message = f"Deployment/{SLUG}: container api: image x/y:latest: no tag or `latest`"
    assert any(error.startswith(message) for error in policy_errors(deployment))


# --- render-manifests: bad input is named ------------------------------------------------------


@pytest.mark.parametrize(
    ("overlay", "image", "how", "message"),
    [
        ("prod", IMAGE, {}, "overlay 'prod': unknown; one of staging, production, canary, kserve"),
        ("staging", f"ghcr.io/acme/{SLUG}", {}, "give a tag other than `latest` or a digest"),
        ("staging", f"ghcr.io/acme/{SLUG}:latest", {}, "a tag other than `latest`"),
        ("staging", "ghcr.io/acme/Credit Risk:1", {}, "not an image reference"),
        ("staging", IMAGE, {"slot": "blue"}, "--slot and --switch are for production"),
        ("production", IMAGE, {}, "--slot: missing; production is blue-green"),
        ("production", IMAGE, {"slot": "red"}, "--slot: 'red' is not a slot"),
    ],
)
def test_bad_input_is_named(overlay: str, image: str, how: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=re.escape(message)):
        render(overlay, image, project=PROJECT, **how)


def test_no_kubectl_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ManifestError, match="kubectl is not on PATH"):
        render("staging", IMAGE, project=PROJECT)


@needs_kubectl
def test_a_kustomize_error_names_the_overlay(project_copy: Path) -> None:
    staging = "deploy/k8s/overlays/staging"
    _plant(project_copy, f"{staging}/kustomization.yaml", "- ../../base", "- ../../bas")
    with pytest.raises(ManifestError, match=rf"kubectl kustomize .*{staging}: .*bas"):
        render("staging", IMAGE, project=project_copy)


@needs_kubectl
def test_the_command_writes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT)
    output = tmp_path / "canary.yaml"
    result = CliRunner().invoke(
        app, ["render-manifests", "canary", "--image", IMAGE, "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert [named(d) for d in yaml.safe_load_all(output.read_text()) if d]
    result = CliRunner().invoke(app, ["render-manifests", "production", "--image", IMAGE])
    assert result.exit_code == 1
    assert "error: --slot: missing" in result.output
