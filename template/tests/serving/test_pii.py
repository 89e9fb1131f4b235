"""Personal data (`pii: true`) never reaches the prediction log raw, nor the API's example."""

from __future__ import annotations

import httpx

from {{ cookiecutter.package_name }}.config import UnknownCategories
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.contract_models import build_request_types
from {{ cookiecutter.package_name }}.serving.pii import PiiMask, pii_hash
from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME

from .conftest import CONTRACT, PII_HASH_KEY, RunningServer, wait_for_log_record
from .test_app import RECORD

EMAIL = "ana.garcia1234@example.com"


def test_personal_data_is_hashed_with_the_key_or_dropped() -> None:
    inputs = {"age": [40, 50], "email": [EMAIL, None]}
    hashed = PiiMask(("email",), b"key")(inputs)
    assert hashed == {"age": [40, 50], "email": [pii_hash(b"key", EMAIL), None]}
    assert hashed["email"][0] != pii_hash(b"another key", EMAIL)
    assert PiiMask(("email",), None)(inputs) == {"age": [40, 50]}
    assert inputs["email"] == [EMAIL, None]  # the request's own columns are left alone


def test_a_logged_line_holds_no_raw_email(server: RunningServer, client: httpx.Client) -> None:
    answer = client.post("/predict", json={**RECORD, "email": EMAIL})
    assert answer.status_code == 200, answer.text
    path = server.workdir / "predictions" / LOG_FILE_NAME
    record = wait_for_log_record(path, answer.json()["request_id"])
    assert record["inputs"]["email"] == [pii_hash(PII_HASH_KEY.encode(), EMAIL)]
    assert EMAIL not in path.read_text()
    assert record["lineage"] == {"run_id": "test-1", "git_commit": "0" * 40, "data_hash": "sample"}


def test_a_malformed_email_is_refused_without_echoing_it(client: httpx.Client) -> None:
    answer = client.post("/predict", json={**RECORD, "email": "not an address"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "record", "email"]
    assert "not an address" not in answer.text


def test_the_documented_example_holds_no_personal_data() -> None:
    contract = Contract.load(CONTRACT)
    example = {**RECORD, "email": EMAIL}
    types = build_request_types(contract, UnknownCategories.REJECT, 10, example)
    assert "email" not in types.example_record
    schema = str(types.record.model_json_schema())
    assert "email" in schema  # accepted, never shown
    assert EMAIL not in schema
