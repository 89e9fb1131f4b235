"""Shared fixtures: small projects in temporary folders, one MLflow store for the session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
{%- if cookiecutter.scale_out == 'spark' %}
from spark.cluster import spark_master  # noqa: F401 - one Spark cluster for the whole session
{%- endif %}
from support import SAMPLE, contract_file_for, project_params

from {{ cookiecutter.package_name }}.config import Params, load_params
from {{ cookiecutter.package_name }}.schema import Contract

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Before scikit-learn loads OpenMP: threads only slow down fits this small (see Makefile).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract.load(SAMPLE / "schema.yaml")


@pytest.fixture(scope="session")
def binary_contract(tmp_path_factory: pytest.TempPathFactory) -> Contract:
    """For tests whose assertions are about one task kind, whatever the project's target."""
    return Contract.load(contract_file_for("binary", tmp_path_factory.mktemp("contracts")))


@pytest.fixture(scope="session")
def params() -> Params:
    return Params.model_validate(project_params())


@pytest.fixture(scope="session", autouse=False)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite store for the session: creating one costs seconds (schema migrations)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


ProjectFactory = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectFactory:
    """A project folder with params.yaml and a contract, made the working directory."""

    def factory(changes: dict[str, Any] | None = None, contract_file: Path | None = None) -> Path:
        values = project_params(changes)
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
        source = contract_file or SAMPLE / "schema.yaml"
        (tmp_path / values["data"]["contract"]).write_text(source.read_text())
        monkeypatch.chdir(tmp_path)
        load_params(tmp_path / "params.yaml")  # a broken override should fail here, not later
        return tmp_path

    return factory
