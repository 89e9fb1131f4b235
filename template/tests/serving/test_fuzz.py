"""Property-based fuzzing of the live API from its own OpenAPI document: no 5xx, ever."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from .conftest import RunningServer

EXAMPLES_PER_OPERATION = 15  # about 100 requests over the API's operations


def test_no_server_errors(server: RunningServer) -> None:
    # Strategies per operation rather than @schema.parametrize: the server's URL is only known
    # once the fixture has started it (and schemathesis' fixture loader trails pytest 9).
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/predict", "/health", "/model", "/admin/reload"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        no_server_error()
