"""POST /explain against the real servers: contributions that add up to the served model's
own output for every task kind, and the refusals /predict gives, given the same way (the key
and role it needs are in test_auth.py's route matrix)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from support import TARGETS, project_params

from {{ cookiecutter.package_name }}.config import Params, UnknownCategories
from {{ cookiecutter.package_name }}.contributions import LINEAR_METHOD
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.contract_models import build_request_types
from {{ cookiecutter.package_name }}.serving.explain import explain
from {{ cookiecutter.package_name }}.serving.model_store import load_model_dir
from {{ cookiecutter.package_name }}.train import fit_model

from .conftest import CONTRACT, RunningServer
from .test_app import RECORD

# Every task kind's server takes the project's features (only the target differs).
FEATURES_OF = Contract.load(CONTRACT)


def _records() -> list[dict[str, object]]:
    """Sample rows of the contract's features, one with a value missing."""
    table = make_sample(FEATURES_OF, 40, seed=11)[FEATURES_OF.feature_names]
    records: list[dict[str, object]] = json.loads(table.to_json(orient="records"))
    records[0][next(c.name for c in FEATURES_OF.features if c.nullable)] = None
    return records


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_contributions_add_up_to_the_served_output(
    kind_servers: dict[str, RunningServer], kind: str
) -> None:
    server = kind_servers[kind]
    records = _records()
    with server.client() as http:
        explained = http.post("/explain", json=records).json()
        predicted = http.post("/predict", json=records).json()
    contributions = np.asarray(explained["contributions"])
    raw = np.asarray(explained["raw_outputs"])
    assert contributions.shape == (len(records), len(explained["outputs"]), 5)
    assert explained["features"] == FEATURES_OF.feature_names
    total = np.asarray(explained["base_values"]) + contributions.sum(axis=2)
    assert np.abs(total - raw).max() <= 1e-6
    # The raw output is the served model's: through its link it gives what /predict answers.
    if kind == "regression":
        assert explained["output_space"] == "value"
        assert np.abs(raw[:, 0] - np.asarray(predicted["predictions"])).max() <= 1e-6
        return
    probabilities = np.asarray(predicted["probabilities"])
    if kind == "binary":
        assert explained["output_space"] == "log_odds"
        assert explained["outputs"] == predicted["classes"][1:]
        assert np.abs(1 / (1 + np.exp(-raw[:, 0])) - probabilities[:, 1]).max() <= 1e-6
    else:
        assert explained["output_space"] == "class_margin"
        assert explained["outputs"] == predicted["classes"]
        softmax = np.exp(raw - raw.max(axis=1, keepdims=True))
        softmax /= softmax.sum(axis=1, keepdims=True)
        assert np.abs(softmax - probabilities).max() <= 1e-6


@pytest.mark.parametrize(
    "body",
    [
        {**RECORD, "age": "old"},
        {k: v for k, v in RECORD.items() if k != "loan_amount"},
        {**RECORD, "employment_type": "astronaut"},
        [],
    ],
)
def test_refuses_what_predict_refuses(client: httpx.Client, body: object) -> None:
    explained = client.post("/explain", json=body)
    predicted = client.post("/predict", json=body)
    assert explained.status_code == predicted.status_code == 422
    assert explained.json() == predicted.json()


def test_body_over_limit(client: httpx.Client) -> None:
    assert client.post("/explain", content=b" " * 70_000).status_code == 413


def test_published_with_the_request_schema(client: httpx.Client) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/explain"]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PredictRequest"}
    assert set(body["examples"]) == {"record", "records", "columnar"}
    assert "ExplanationResponse" in json.dumps(operation["responses"]["200"])


def test_a_linear_model_is_explained_and_another_refused(export_dir: Path) -> None:
    trees = load_model_dir(export_dir)
    types = build_request_types(trees.contract, UnknownCategories.REJECT, 10)
    body = json.dumps([RECORD, RECORD]).encode()
    contract = trees.contract
    train = make_sample(contract, 200, seed=4)
    params = Params.model_validate(project_params({"model": {"type": "linear"}}))
    linear = dataclasses.replace(
        trees, trees=None, estimator=fit_model(train, contract, params.model)
    )
    status, answer = explain(types, linear, body, "r-1")
    assert status == 200
    assert json.loads(answer)["method"] == LINEAR_METHOD
    status, answer = explain(types, dataclasses.replace(trees, trees=None), body, "r-2")
    assert status == 409
    assert "has no explainer" in json.loads(answer)["detail"]
