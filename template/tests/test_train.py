from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from support import SAMPLE

from {{ cookiecutter.package_name }}.config import ModelType, Params
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.evaluate import score
from {{ cookiecutter.package_name }}.features import split_table
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.tracking import model_requirements
from {{ cookiecutter.package_name }}.train import fit_model, train_and_log


@pytest.mark.parametrize("model_type", list(ModelType))
def test_training_twice_gives_identical_metrics(
    model_type: ModelType, contract: Contract, params: Params
) -> None:
    model_params = params.model.model_copy(update={"type": model_type})
    train, test = split_table(make_sample(contract, 600, seed=1), contract, 0.25, seed=1)
    first = score(fit_model(train, contract, model_params), test, contract, 0.5)
    second = score(fit_model(train, contract, model_params), test, contract, 0.5)
    assert first == second


def test_run_logs_model_lineage_and_environment(
    mlflow_store: str, contract: Contract, params: Params, tmp_path: Path
) -> None:
    train, _ = split_table(make_sample(contract, 300, seed=1), contract, 0.25, seed=1)
    params = params.model_copy(
        update={
            "data": params.data.model_copy(update={"contract": SAMPLE / "schema.yaml"}),
            "tracking": params.tracking.model_copy(update={"experiment_name": "test-train"}),
        }
    )
    stamp = "2026-11-01T00:00:00+00:00"
    run = train_and_log(train, contract, params, data_hash="abc123", data_timestamp=stamp)
    logged = mlflow.get_run(run.run_id)
    assert logged.data.tags["data_hash"] == "abc123"
    assert logged.data.tags["data_timestamp"] == stamp
    assert logged.data.tags["params_hash"] == params.digest()
    assert "git_commit" in logged.data.tags
    assert logged.data.params["model.type"] == params.model.type.value
    assert logged.inputs.dataset_inputs[0].dataset.name == "train"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id)}
    assert {"environment.json", "contract", "example_record.json"} <= artifacts
    assert "reference_profile.json" in artifacts
    example = mlflow.artifacts.load_dict(f"runs:/{run.run_id}/example_record.json")
    assert set(example) == set(contract.feature_names)
    assert None not in example.values()  # a complete record documents every field
    model = mlflow.sklearn.load_model(run.model_uri)
    assert model.predict(contract.encode(train.head(3))).shape == (3,)
    # The model's requirements are the pins read from this environment.
    requirements = Path(mlflow.pyfunc.get_model_dependencies(run.model_uri)).read_text()
    assert requirements.split() == model_requirements()
