"""Request models from the contract: the OpenAPI example is a real record when one is valid;
a list of records validated alone answers as the whole request's union does."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

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


def _outcome(validate: Callable[[bytes], Any], body: bytes) -> Any:
    try:
        return validate(body)
    except ValidationError as exc:
        return exc.errors(include_url=False)


def test_records_validated_alone_answer_as_the_union_does() -> None:
    contract = Contract.load(CONTRACT)
    types = build_request_types(contract, UnknownCategories.REJECT, 3)
    record = example_record(contract)
    categorical = next(c.name for c in contract.features if c.categories)
    optional = next(c.name for c in contract.features if c.nullable)
    absent = {name: value for name, value in record.items() if name != optional}
    bodies = [
        [record, {**record, "annual_income": None}],
        [{**record, "age": 70.0}, absent],  # a whole float is an integer; a field left out
        [{**record, "age": 5}, 3, {**record, "shoe_size": 1}, {}],  # also one row too many
        [{**record, categorical: "astronaut", "owns_home": 1}],
        [],
    ]
    raw = [json.dumps(body).encode() for body in bodies] + [b"[", b"[1,", b'[{"age": NaN}]']
    for body in raw:
        # repr: NaN is not equal to itself. Valid records come back as columns (validated as
        # such) or as records: compared as the columns they make.
        alone, union = (
            _outcome(lambda b, v=v: types.to_columns(v(b)), body)
            for v in (types.validate_json, types.adapter.validate_json)
        )
        assert repr(alone) == repr(union)
    assert (
        types.to_columns(types.validate_json(raw[0]))[0][categorical] == [record[categorical]] * 2
    )
