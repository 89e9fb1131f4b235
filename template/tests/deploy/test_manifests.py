"""The manifests CD applies, rendered as `render-manifests` renders them, pass the checks
(checks.py); a broken one fails naming the object and the field; bad input to
`render-manifests` is named. No cluster runs here: a real one belongs in a GitHub workflow
(kind)."""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.delivery.manifests import ManifestError, render

from .checks import Document, named, pod_spec, policy_errors, schema_errors

PROJECT = Path(__file__).parents[2]
SLUG = "{{ cookiecutter.project_slug }}"
IMAGE = f"ghcr.io/acme/{SLUG}:1.4.0"

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


def rendered(project: Path = PROJECT, **how: Any) -> list[Document]:
    text = render(how.pop("overlay"), how.pop("image", IMAGE), project=project, **how)
    return [document for document in yaml.safe_load_all(text) if document]


@pytest.fixture(scope="session")
def renderings() -> dict[str, list[Document]]:
    # One kubectl process each, run side by side.
    with ThreadPoolExecutor() as pool:
        futures = {name: pool.submit(rendered, **how) for name, how in RENDERINGS.items()}
    return {name: future.result() for name, future in futures.items()}


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
        # KServe's runtime probes the Open Inference Protocol's health routes.
        v2 = document["kind"] == "ServingRuntime"
        for container in (pod_spec(document) or {}).get("containers", []):
            assert container["image"] == IMAGE
            assert [port["containerPort"] for port in container["ports"]] == [8000]
            live, ready = ("/v2/health/live", "/v2/health/ready") if v2 else ("/health", "/ready")
            assert container["livenessProbe"]["httpGet"]["path"] == live
            assert container["readinessProbe"]["httpGet"]["path"] == ready
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
def test_the_inference_service_speaks_v2_with_a_canary_share(
    renderings: dict[str, list[Document]],
) -> None:
    runtime, service = renderings["kserve"]
    assert runtime["kind"] == "ServingRuntime"
    assert runtime["spec"]["protocolVersions"] == ["v2"]
    predictor = service["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    # The image is the InferenceService's own: a new one is a revision the canary share splits.
    assert predictor["model"] == {
        "runtime": runtime["metadata"]["name"],
        "modelFormat": {"name": runtime["spec"]["supportedModelFormats"][0]["name"]},
        "protocolVersion": "v2",
        "image": IMAGE,
    }


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
        "deploy/kserve/servingruntime.yaml",
        "- containerPort: 8000",
        "- prots: 8000",
        "kserve",
        f"ServingRuntime/{SLUG}: spec.containers[0].ports[0].prots: unknown field",
        id="kserve-unknown-field",
    ),
    pytest.param(
        "deploy/kserve/inferenceservice.yaml",
        "protocolVersion: v2",
        "protocolVersions: v2",
        "kserve",
        f"InferenceService/{SLUG}: spec.predictor.model.protocolVersions: unknown field",
        id="kserve-protocol-field",
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
