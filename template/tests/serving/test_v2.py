"""The Open Inference Protocol (V2) beside /predict, on the live service: Triton's own client
scores every task kind as /predict does; errors name the input; the protocol's requests go
the /predict path (log line, metrics, canary, keys, 413)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from prometheus_client.parser import text_string_to_metric_families
from support import TARGETS

from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.schema import ColumnType, Contract
from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME

from .conftest import API_KEY, CONTRACT, MAX_BODY_BYTES, RunningServer, wait_for_log_record
from .test_app import RECORD

CONTRACT_MODEL = Contract.load(CONTRACT)
NAME = "{{ cookiecutter.project_slug }}"
INFER = f"/v2/models/{NAME}/infer"
NUMPY = {"FP64": np.float64, "INT64": np.int64, "BOOL": np.bool_, "BYTES": np.object_}
DATATYPES = {
    ColumnType.NUMERIC: "FP64",
    ColumnType.INTEGER: "INT64",
    ColumnType.BOOLEAN: "BOOL",
    ColumnType.CATEGORICAL: "BYTES",
}


def sample_columns(rows: int = 12) -> dict[str, list[Any]]:
    """Feature columns of sample rows, a missing value in a nullable numeric one (NaN in a
    tensor, null for /predict) and the rest filled (a BYTES tensor holds no null)."""
    table = make_sample(CONTRACT_MODEL, rows, seed=3)
    columns: dict[str, list[Any]] = {}
    for column in CONTRACT_MODEL.features:
        values = table[column.name]
        if column.type is ColumnType.CATEGORICAL:
            values = values.fillna(column.categories[0] if column.categories else "")
        elif column.type is not ColumnType.NUMERIC:
            values = values.fillna(values.dropna().iloc[0])
        columns[column.name] = [None if v != v else v for v in values.tolist()]
    nullable = [
        c.name for c in CONTRACT_MODEL.features if c.nullable and c.type is ColumnType.NUMERIC
    ]
    for name in nullable[:1]:
        columns[name][0] = None
    return columns


def tensors(columns: dict[str, list[Any]]) -> dict[str, tuple[str, np.ndarray]]:
    """Each column as the datatype and array a numpy client holds."""
    arrays = {}
    for column in CONTRACT_MODEL.features:
        datatype = DATATYPES[column.type]
        values = columns[column.name]
        if datatype == "FP64":
            values = [np.nan if v is None else v for v in values]
        elif datatype == "BYTES":
            values = [str(v).encode() for v in values]
        arrays[column.name] = (datatype, np.array(values, dtype=NUMPY[datatype]))
    return arrays


def predict(server: RunningServer, columns: dict[str, list[Any]]) -> dict[str, Any]:
    with server.client() as http:
        response = http.post("/predict", json={"columns": columns})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("kind", TARGETS)
def test_tritonclient_scores_as_predict_does(
    kind_servers: dict[str, RunningServer], kind: str, binary: bool
) -> None:
    server = kind_servers[kind]
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(NAME)
    metadata = client.get_model_metadata(NAME)
    classes = TARGETS[kind].get("classes")
    assert [(t["name"], t["datatype"]) for t in metadata["inputs"]] == [
        (c.name, DATATYPES[c.type]) for c in CONTRACT_MODEL.features
    ]
    expected_outputs = ["predictions", "probabilities"] if classes else ["predictions"]
    assert [t["name"] for t in metadata["outputs"]] == expected_outputs

    columns = sample_columns()
    inputs = []
    for index, (name, (datatype, array)) in enumerate(tensors(columns).items()):
        shaped = array.reshape(-1, 1) if index % 2 else array  # [n, 1] and [n] both
        tensor = triton.InferInput(name, list(shaped.shape), datatype)
        tensor.set_data_from_numpy(shaped, binary_data=binary)
        inputs.append(tensor)
    # Binary: every output, as the client asks by default; JSON: each one by name.
    wanted = (
        None
        if binary
        else [triton.InferRequestedOutput(n, binary_data=False) for n in expected_outputs]
    )
    result = client.infer(NAME, inputs, outputs=wanted, request_id="triton-1")
    expected = predict(server, columns)

    labels = result.as_numpy("predictions")
    assert labels is not None
    if labels.dtype == np.object_:  # BYTES: bytes from binary data, str from JSON
        labels = np.array([v.decode() if isinstance(v, bytes) else v for v in labels])
    assert labels.tolist() == expected["predictions"]
    assert result.get_response()["model_version"] == expected["model_version"]
    assert result.get_response()["id"] == "triton-1"
    if classes:
        probabilities = result.as_numpy("probabilities")
        assert probabilities is not None
        assert probabilities.tolist() == expected["probabilities"]
        assert result.get_output("probabilities")["parameters"]["classes"] == classes
    else:
        assert result.get_output("probabilities") is None


def _v2_input(name: str, values: list[Any], datatype: str | None = None) -> dict[str, Any]:
    column = next(c for c in CONTRACT_MODEL.described if c.name == name)
    declared = datatype or DATATYPES.get(column.type, "BYTES")
    return {"name": name, "shape": [len(values)], "datatype": declared, "data": values}


def v2_request(changes: dict[str, Any] | None = None, drop: str | None = None) -> dict[str, Any]:
    record = {**RECORD, **(changes or {})}
    inputs = [
        _v2_input(c.name, [record[c.name]]) for c in CONTRACT_MODEL.features if c.name != drop
    ]
    return {"inputs": inputs}


def test_a_subset_of_the_outputs(client: httpx.Client) -> None:
    answer = client.post(INFER, json={**v2_request(), "outputs": [{"name": "predictions"}]})
    assert answer.status_code == 200
    assert [output["name"] for output in answer.json()["outputs"]] == ["predictions"]
    expected = client.post("/predict", json=RECORD).json()
    assert answer.json()["outputs"][0]["data"] == expected["predictions"]


def _refused(client: httpx.Client, body: Any, status: int = 400, path: str = INFER) -> str:
    answer = client.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"}
    message: str = answer.json()["error"]
    return message


def test_errors_name_the_input_and_the_rule(client: httpx.Client) -> None:
    numeric = next(c for c in CONTRACT_MODEL.features if c.type is ColumnType.NUMERIC)
    required = next(c for c in CONTRACT_MODEL.features if not c.nullable)
    ranged = next(c for c in CONTRACT_MODEL.features if c.max is not None)
    too_big = ranged.max + 1 if ranged.max is not None else 0
    assert f"'{required.name}' missing" in _refused(client, v2_request(drop=required.name))
    message = _refused(client, v2_request({ranged.name: too_big}))
    assert f"input '{ranged.name}' row 0: Input should be less than or equal to" in message
    body = v2_request()
    body["inputs"].append(_v2_input(required.name, [RECORD[required.name]]))
    body["inputs"][-1]["name"] = "shoe_size"
    assert "input 'shoe_size': the model has no such input" in _refused(client, body)
    body = v2_request()
    body["inputs"][0]["shape"] = [2]
    assert f"input '{body['inputs'][0]['name']}': shape [2] holds 2 values, not 1" in _refused(
        client, body
    )
    body = v2_request()
    body["inputs"][0]["shape"] = [1, 2]
    assert "a column is [n] or [n, 1]" in _refused(client, body)
    body = v2_request()
    tensor = next(t for t in body["inputs"] if t["name"] == numeric.name)
    tensor["datatype"] = "BYTES"
    assert f"input '{numeric.name}': datatype BYTES, the contract's column is FP64" in _refused(
        client, body
    )
    assert "output 'shap': the model has no such output" in _refused(
        client, {**v2_request(), "outputs": [{"name": "shap"}]}
    )
    assert "inputs: Field required" in _refused(client, {"input": []})


def test_a_wrong_name_or_version_is_404(client: httpx.Client) -> None:
    assert "model 'other' is not served here" in _refused(
        client, v2_request(), 404, "/v2/models/other/infer"
    )
    path = f"/v2/models/{NAME}/versions/9/infer"
    assert "has no version '9' served (1)" in _refused(client, v2_request(), 404, path)
    assert client.get(f"/v2/models/{NAME}/versions/9").status_code == 404
    assert client.get(f"/v2/models/{NAME}/versions/1/ready").json() == {"name": NAME, "ready": True}
    assert client.get("/v2/models/other/ready").json() == {
        "error": f"model 'other' is not served here; '{NAME}' is"
    }


def test_the_body_limit_and_the_keys_hold(
    client: httpx.Client, keyed_server: RunningServer
) -> None:
    oversized = {
        "inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a" * MAX_BODY_BYTES]}]
    }
    assert "larger than" in _refused(client, oversized, 413)
    with keyed_server.client() as keyed:
        assert keyed.get("/v2/health/ready").json() == {"ready": True}
        assert keyed.post(INFER, json=v2_request()).json() == {"error": "missing or wrong API key"}
        answer = keyed.post(INFER, json=v2_request(), headers={"X-API-Key": API_KEY})
        assert answer.status_code == 200


def test_the_predict_path_logs_and_counts_it(server: RunningServer, client: httpx.Client) -> None:
    answer = client.post(INFER, json=v2_request(), headers={"X-Request-Id": "v2-logged"})
    assert answer.status_code == 200
    assert answer.json()["id"] == "v2-logged"
    record = wait_for_log_record(server.workdir / "predictions" / LOG_FILE_NAME, "v2-logged")
    assert record["role"] == "stable"
    assert record["outputs"]["predictions"] == answer.json()["outputs"][0]["data"]
    route = "/v2/models/{name}/infer"  # the route's template, as the metrics label it
    labels = f'method="POST",model_version="1",role="stable",route="{route}",status="200"'
    assert "http_requests_total{" + labels + "}" in client.get("/metrics").text


def _unknown_count(client: httpx.Client, feature: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "feature_values_total" and sample.labels == {
                "feature": feature,
                "bin": "unknown",
            }:
                return float(sample.value)
    return 0.0


def test_a_refused_unknown_category_counts_for_drift(client: httpx.Client) -> None:
    categorical = next(c.name for c in CONTRACT_MODEL.features if c.categories)
    before = _unknown_count(client, categorical)
    message = _refused(client, v2_request({categorical: "astronaut"}))
    assert message.startswith(f"input '{categorical}' row 0: Input should be")
    deadline = time.monotonic() + 5  # the counts are flushed every second
    while _unknown_count(client, categorical) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _unknown_count(client, categorical) == before + 1


def test_a_version_pins_the_canary(canary_server: RunningServer) -> None:
    with canary_server.client() as http:
        versions = http.get(f"/v2/models/{NAME}").json()["versions"]
        assert versions == ["1", "2"]
        for version in versions:
            answer = http.post(f"/v2/models/{NAME}/versions/{version}/infer", json=v2_request())
            assert answer.json()["model_version"] == version
