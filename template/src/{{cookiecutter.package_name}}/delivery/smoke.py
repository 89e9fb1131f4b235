"""`smoke-test URL`: is a freshly deployed service up, and does it score a real record?

Waits for `/ready` (a rollout takes a while), then posts the record the service documents
in its OpenAPI page (a real training row the export carries, or one built from the
contract) and checks the answer's shape. The example comes from the service itself, so the
check needs no copy of the contract and follows whichever model is deployed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import ValidationError

from ..serving.contract_models import PredictionResponse

Say = Callable[[str], None]


class SmokeError(Exception):
    """The service failed a check; the message names the route and what it answered."""


def smoke_test(
    url: str,
    api_key: str | None,
    say: Say,
    timeout: float = 120.0,
    model_version: str | None = None,
) -> PredictionResponse:
    """Every check in order; the first failure raises SmokeError."""
    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=10) as client:
        version = wait_ready(client, timeout).get("model_version")
        if not isinstance(version, str):
            raise SmokeError("/ready answered 200 without a model_version")
        say(f"ready: model v{version}")
        if model_version is not None and version != model_version:
            raise SmokeError(f"/ready: the service runs model v{version}, not v{model_version}")
        record = documented_example(client)
        answer = check_answer(_call(client, "POST", "/predict", json=record), version)
        say(f"scored the documented example: {answer.predictions[0]!r} (model v{version})")
        return answer


def wait_ready(client: httpx.Client, timeout: float) -> dict[str, Any]:
    """GET /ready until it answers 200, for at most `timeout` seconds.

    Refused connections and 502-504 (nothing listening yet, a proxy before its backend, a
    draining pod) are retried; any other answer is final."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = client.get("/ready")
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                return _json(response, "/ready")
            if response.status_code not in {502, 503, 504}:
                raise SmokeError(f"/ready answered {_said(response)}")
            problem = f"answered {_said(response)}"
        if time.monotonic() >= deadline:
            raise SmokeError(f"{client.base_url} not ready after {timeout:g} s: {problem}")
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def documented_example(client: httpx.Client) -> dict[str, Any]:
    """The single-record example of POST /predict in the service's OpenAPI document."""
    document = _json(_call(client, "GET", "/openapi.json"), "/openapi.json")
    try:
        body = document["paths"]["/predict"]["post"]["requestBody"]["content"]
        record = body["application/json"]["examples"]["record"]["value"]
    except (KeyError, TypeError):
        raise SmokeError("/openapi.json documents no single-record example for /predict") from None
    if not isinstance(record, dict):
        raise SmokeError("/openapi.json: the /predict record example is not an object")
    return record


def check_answer(response: httpx.Response, version: str) -> PredictionResponse:
    """One prediction, from the version /ready named; probabilities (if any) sum to one."""
    try:
        answer = PredictionResponse.model_validate_json(response.content)
    except ValidationError as exc:
        raise SmokeError(f"/predict: the answer is not a prediction response: {exc}") from None
    if len(answer.predictions) != 1:
        raise SmokeError(f"/predict: {len(answer.predictions)} predictions for one record")
    if answer.model_version != version:
        raise SmokeError(
            f"/predict: scored by model v{answer.model_version}, /ready said v{version}"
        )
    rows = answer.probabilities or []
    if rows and (len(rows) != 1 or not math.isclose(sum(rows[0]), 1.0, abs_tol=1e-6)):
        raise SmokeError(f"/predict: probabilities {rows} are not one row summing to 1")
    return answer


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise SmokeError(f"{path}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        hint = (
            " (is the API key's variable set? --api-key-env)" if response.status_code == 401 else ""
        )
        raise SmokeError(f"{path} answered {_said(response)}{hint}")
    return response


def _json(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        raise SmokeError(f"{path}: the answer is not JSON: {response.text[:200]!r}") from None
    if not isinstance(document, dict):
        raise SmokeError(f"{path}: expected a JSON object, got {response.text[:200]!r}")
    return document


def _said(response: httpx.Response) -> str:
    return f"{response.status_code}: {response.text[:200]}"
