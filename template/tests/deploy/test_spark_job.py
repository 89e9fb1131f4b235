"""The nightly Spark scoring job (deploy/k8s/spark), rendered with kustomize and walked through
the kubeflow spark-operator's own API models: an unknown or mistyped field fails, naming it.
No cluster and no operator run here."""

from __future__ import annotations

import shutil
import subprocess
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubeflow_spark_api.models import SparkV1beta2ScheduledSparkApplication
from pydantic import BaseModel

PROJECT = Path(__file__).parents[2]
SLUG = "{{ cookiecutter.project_slug }}"


def field_errors(model: type[BaseModel], value: Any, path: str) -> list[str]:
    """Keys the model does not name, at any depth (the SDK's models ignore them), and the
    model's own validation errors."""
    if not isinstance(value, dict):
        return [f"{path}: expected a mapping, got {value!r}"]
    fields = {info.alias or name: info.annotation for name, info in model.model_fields.items()}
    errors = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            errors.append(f"{where}: not a field of {model.__name__}")
            continue
        for inner in _models(fields[key]):
            if isinstance(item, list):
                for number, element in enumerate(item):
                    errors += field_errors(inner, element, f"{where}[{number}]")
            else:
                errors += field_errors(inner, item, where)
    return errors


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside Optional[...], List[...] or a model itself."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        return [m for argument in typing.get_args(annotation) for m in _models(argument)]
    return []


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the manifests are rendered with `kubectl kustomize`")
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(PROJECT / "deploy" / "k8s" / "spark")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    documents = [document for document in yaml.safe_load_all(rendered) if document]
    assert [d["kind"] for d in documents] == ["ScheduledSparkApplication"]
    document: dict[str, Any] = documents[0]
    return document


def test_the_job_is_a_valid_scheduled_spark_application(job: dict[str, Any]) -> None:
    assert field_errors(SparkV1beta2ScheduledSparkApplication, job, "") == []
    SparkV1beta2ScheduledSparkApplication.model_validate(job)
    assert job["metadata"]["namespace"] == f"{SLUG}-batch"


def test_the_job_runs_the_projects_spark_scoring(job: dict[str, Any]) -> None:
    template = job["spec"]["template"]
    assert template["mainApplicationFile"] == f"local:///app/.venv/bin/{SLUG}"
    assert template["arguments"][:3] == ["predict", "--engine", "spark"]
    # The master is the operator's (k8s://): the job names none.
    assert "--master" not in template["arguments"]
    assert template["sparkVersion"].split(".")[0] == "4"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    for role in ("driver", "executor"):
        security = template[role]["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["allowPrivilegeEscalation"] is False


def test_a_wrong_field_is_named() -> None:
    broken = {"spec": {"template": {"executor": {"instancez": 2}}}}
    errors = field_errors(SparkV1beta2ScheduledSparkApplication, broken, "")
    assert errors == ["spec.template.executor.instancez: not a field of SparkV1beta2ExecutorSpec"]
