"""Every route and every kind of bad input, against the real server."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.contract_models import example_record

from .conftest import CONTRACT, RunningServer

RECORD = example_record(Contract.load(CONTRACT))
# The project's own target: a list of classes, or None for regression.
_classes = Contract.load(CONTRACT).target.classes
CLASSES = list(_classes) if _classes is not None else None


def test_health_and_ready(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == "1"


def test_predict_one_record(client: httpx.Client) -> None:
    response = client.post("/predict", json=RECORD)
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "1"
    assert body["classes"] == CLASSES
    if CLASSES is None:
        assert body["probabilities"] is None
        assert isinstance(body["predictions"][0], float)
    else:
        assert body["predictions"][0] in CLASSES
        assert sum(body["probabilities"][0]) == pytest.approx(1.0)
    assert response.headers["x-request-id"] == body["request_id"]


def test_list_and_columnar_forms_agree(client: httpx.Client) -> None:
    second = {**RECORD, "annual_income": None, "employment_type": None, "owns_home": False}
    as_list = client.post("/predict", json=[RECORD, second]).json()
    columns = {name: [RECORD[name], second[name]] for name in RECORD}
    as_columns = client.post("/predict", json={"columns": columns}).json()
    assert as_list["predictions"] == as_columns["predictions"]
    assert as_list["probabilities"] == as_columns["probabilities"]
    assert len(as_list["predictions"]) == 2


def test_ids_are_echoed(client: httpx.Client) -> None:
    body = client.post("/predict", json=[{**RECORD, "applicant_id": "a-1"}, RECORD]).json()
    assert body["ids"] == ["a-1", None]


def test_a_whole_number_float_is_an_integer(client: httpx.Client) -> None:
    """JSON has one number type: 70.0 is the integer the schema allows, in every body form."""
    one = client.post("/predict", json={**RECORD, "age": 70})
    for body in ({**RECORD, "age": 70.0}, [{**RECORD, "age": 70.0}]):
        answer = client.post("/predict", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["probabilities"] == one.json()["probabilities"]


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    errors: list[dict[str, Any]] = response.json()["detail"]
    return errors


@pytest.mark.parametrize(
    ("change", "field", "error_type"),
    [
        ({"age": None}, "age", "int_type"),
        ({"age": "forty"}, "age", "int_type"),
        ({"age": "70"}, "age", "int_type"),
        ({"age": True}, "age", "int_type"),
        ({"age": 70.5}, "age", "int_type"),
        ({"age": 17}, "age", "greater_than_equal"),
        ({"loan_amount": 2_000_000}, "loan_amount", "less_than_equal"),
        ({"employment_type": "astronaut"}, "employment_type", "literal_error"),
        ({"owns_home": "yes"}, "owns_home", "bool_type"),
        ({"favourite_colour": "blue"}, "favourite_colour", "extra_forbidden"),
    ],
)
def test_bad_field_is_named(
    client: httpx.Client, change: dict[str, Any], field: str, error_type: str
) -> None:
    errors = _errors(client.post("/predict", json={**RECORD, **change}))
    assert [(e["loc"], e["type"]) for e in errors] == [(["body", "record", field], error_type)]


@pytest.mark.parametrize("value", [False, 1.5, [1]])
def test_an_id_is_a_whole_number_or_a_string(client: httpx.Client, value: Any) -> None:
    errors = _errors(client.post("/predict", json={**RECORD, "applicant_id": value}))
    assert {tuple(e["loc"][:3]) for e in errors} == {("body", "record", "applicant_id")}


def test_missing_field_is_named(client: httpx.Client) -> None:
    record = {k: v for k, v in RECORD.items() if k != "loan_amount"}
    errors = _errors(client.post("/predict", json=[record]))
    assert errors == [
        {"loc": ["body", "records", 0, "loan_amount"], "msg": "Field required", "type": "missing"}
    ]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_inf_are_refused(client: httpx.Client, token: str) -> None:
    body = json.dumps({**RECORD, "annual_income": 1.5}).replace("1.5", token)
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert [e["type"] for e in _errors(response)] == ["finite_number"]


def test_empty_and_oversized_batches(client: httpx.Client) -> None:
    assert _errors(client.post("/predict", json=[]))[0]["type"] == "too_short"
    assert _errors(client.post("/predict", json=[RECORD] * 101))[0]["type"] == "too_long"
    columns: dict[str, list[Any]] = {name: [] for name in RECORD}
    assert {e["type"] for e in _errors(client.post("/predict", json={"columns": columns}))} == {
        "too_short"
    }


def test_columns_of_different_lengths(client: httpx.Client) -> None:
    columns = {name: [value] for name, value in RECORD.items()}
    columns["age"] = [30, 40]
    errors = _errors(client.post("/predict", json={"columns": columns}))
    assert "same number of values" in errors[0]["msg"]


def test_not_json_and_wrong_shape(client: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    assert _errors(client.post("/predict", content=b"{not json", headers=headers))
    assert _errors(client.post("/predict", content=b'"a string"', headers=headers))


def test_body_over_limit_by_content_length(client: httpx.Client) -> None:
    response = client.post("/predict", content=b" " * 70_000)
    assert response.status_code == 413
    assert "65536" in response.json()["detail"]


def test_body_over_limit_when_streamed(server: RunningServer) -> None:
    """Chunked upload without Content-Length: the limit is enforced on the bytes received."""

    def chunks() -> Any:
        for _ in range(20):
            yield b" " * 8192

    with server.client() as http:
        response = http.post("/predict", content=chunks())
    assert response.status_code == 413


def test_unknown_route_is_json_404(client: httpx.Client) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_model_card(client: httpx.Client) -> None:
    card = client.get("/model").json()
    for key in ("name", "version", "alias", "git_commit", "data_hash", "trained_at", "metrics"):
        assert key in card
    assert card["alias"] == "champion"


def test_metrics_after_predictions(client: httpx.Client) -> None:
    client.post("/predict", json=RECORD)
    text = client.get("/metrics").text
    labels = 'method="POST",model_version="1",role="stable",route="/predict",status="200"'
    assert "http_requests_total{" + labels + "}" in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'predictions_total{model_version="1",prediction=' in text
    assert 'prediction_score_count{model_version="1",role="stable"}' in text
    assert 'model_info{alias="champion",name="{{ cookiecutter.project_slug }}",version="1"} 1.0' in text


def test_openapi_examples_are_valid_requests(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    examples = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    assert set(examples) == {"record", "records", "columnar"}
    for example in examples.values():
        assert client.post("/predict", json=example["value"]).status_code == 200
    record_schema = document["components"]["schemas"]["PredictionRecord"]
    assert record_schema["properties"]["age"]["minimum"] == 18
    assert record_schema["additionalProperties"] is False


def test_no_stack_trace_on_malformed_http(server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 4")
    assert b"Traceback" not in answer


def test_logs_are_json(server: RunningServer, client: httpx.Client) -> None:
    client.get("/health")
    lines = [line for line in server.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any(r.get("logger") == "{{ cookiecutter.package_name }}.serving.access" for r in records)
