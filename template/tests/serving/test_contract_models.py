"""Request models from the contract: the OpenAPI example is a real record when one is valid."""

from __future__ import annotations

from typing import Any

from {{ cookiecutter.package_name }}.config import UnknownCategories
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.contract_models import build_request_types, example_record

from .conftest import CONTRACT


def _examples(example: dict[str, Any] | None) -> list[dict[str, Any]]:
    types = build_request_types(Contract.load(CONTRACT), UnknownCategories.REJECT, 10, example)
    shown: list[dict[str, Any]] = types.record.model_json_schema()["examples"]
    assert shown == [types.example_record]
    return shown


def test_a_logged_training_record_is_the_example() -> None:
    real = {**example_record(Contract.load(CONTRACT)), "age": 33, "owns_home": False}
    assert _examples(real) == [real]


def test_a_record_the_contract_refuses_is_replaced_by_a_built_one() -> None:
    contract = Contract.load(CONTRACT)
    assert _examples({**example_record(contract), "age": -5}) == [example_record(contract)]
    assert _examples(None) == [example_record(contract)]
