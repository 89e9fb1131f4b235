"""Property-based fuzzing of the live API from its own OpenAPI document, with every check.

schemathesis' checks compare each answer with the document: no 5xx, valid data accepted,
invalid data refused, documented status codes, headers and response schemas, auth enforced.
It runs for each task kind (binary, multiclass, regression), admin token set, on /predict
and the Open Inference Protocol's routes alike.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from support import TARGETS

from .conftest import ADMIN_TOKEN, MAX_BODY_BYTES, RunningServer

EXAMPLES_PER_OPERATION = 10  # per generation mode: about 150 requests a task kind
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _columns_agree(case: schemathesis.Case[Any]) -> bool:
    """A columnar batch needs columns of one length: a rule JSON Schema cannot state, so the
    server's 422 for it would read as 'valid data refused'."""
    columns = case.body.get("columns") if isinstance(case.body, dict) else None
    if not isinstance(columns, dict):
        return True
    return len({len(v) for v in columns.values() if isinstance(v, list)}) <= 1


def _rows_agree(case: schemathesis.Case[Any]) -> schemathesis.Case[Any]:
    """A valid V2 request's tensors hold one value a row each, as many as their shapes say:
    rules JSON Schema cannot state either, so valid requests are made to keep them (each
    input cut to the shortest, its shape set to match)."""
    inputs = case.body.get("inputs") if isinstance(case.body, dict) else None
    if case.operation.path.endswith("/infer") and inputs:
        rows = min(len(tensor["data"]) for tensor in inputs)
        for tensor in inputs:
            tensor["data"] = tensor["data"][:rows]
            tensor["shape"][0] = rows
    return case


def _within_body_limit(case: schemathesis.Case[Any]) -> bool:
    """Bodies under the byte limit: over it the answer is the documented 413, which neither
    'valid data accepted' nor 'invalid data refused' (400/422) expects, and long generated
    strings pass it at fewer rows than MAX_BATCH_ROWS. test_app.py tests the limit itself."""
    if not isinstance(case.body, dict | list):
        return True  # no body, or a scalar one
    return len(json.dumps(case.body).encode()) <= MAX_BODY_BYTES


@pytest.mark.parametrize("kind", TARGETS)
def test_every_check_passes(kind_servers: dict[str, RunningServer], kind: str) -> None:
    # Strategies per operation rather than @schema.parametrize: the server's URL is only known
    # once the fixture has started it.
    api = schemathesis.openapi.from_url(f"{kind_servers[kind].url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {
        *("/predict", "/health", "/model", "/admin/reload"),
        *("/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/versions/{version}/infer"),
    }
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
        .map(_rows_agree)
        .filter(_columns_agree)
        .filter(_within_body_limit)
        for operation in operations
    ]
    strategies += [
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        .filter(_columns_agree)
        .filter(_within_body_limit)
        for operation in operations
    ]

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION * len(strategies),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=AUTH)  # no `checks=`: every built-in check

    conforms()
