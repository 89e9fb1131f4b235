"""smoke-test against the real service: uvicorn on loopback, with an API key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from serving.conftest import RunningServer, cached_export, free_port
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.delivery.smoke import SmokeError, check_answer

KEY = "smoke-key"


@pytest.fixture(scope="module")
def service(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    env = {
        "MODEL_DIR": str(cached_export(pytestconfig, "1")),
        "API_KEY": KEY,
        "PREDICTION_LOG_DIR": "",
    }
    running = RunningServer(env, tmp_path_factory.mktemp("smoke"))
    yield running.wait_healthy()
    running.stop()


def smoke(*args: str, key: str | None = KEY) -> tuple[int, str]:
    env = {"SMOKE_KEY": key} if key is not None else {}
    result = CliRunner().invoke(app, ["smoke-test", *args, "--api-key-env", "SMOKE_KEY"], env=env)
    return result.exit_code, result.output


def test_passes_against_the_running_service(service: RunningServer) -> None:
    code, output = smoke(service.url, "--model-version", "1")
    assert code == 0, output
    assert "ready: model v1" in output
    assert "scored the documented example" in output
    assert output.endswith("smoke test passed\n")


@pytest.mark.parametrize(
    ("args", "key", "message"),
    [
        ((), "wrong", "/predict answered 401: "),
        ((), None, "(is the API key's variable set? --api-key-env)"),
        (("--model-version", "9"), KEY, "/ready: the service runs model v1, not v9"),
    ],
)
def test_fails_naming_the_check(
    service: RunningServer, args: tuple[str, ...], key: str | None, message: str
) -> None:
    code, output = smoke(service.url, *args, key=key)
    assert code == 1
    assert message in output


def test_nothing_listening_fails_after_the_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, output = smoke(url, "--timeout", "0.5")
    assert code == 1
    assert f"smoke test failed: {url} not ready after 0.5 s: ConnectError" in output


def test_a_wrong_route_is_final(service: RunningServer) -> None:
    """A URL that answers 404 is the wrong URL, not a rollout in progress: no waiting."""
    code, output = smoke(f"{service.url}/nowhere", "--timeout", "60")
    assert code == 1
    assert "/ready answered 404" in output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"predictions": [1]}', "not a prediction response"),
        (
            b'{"request_id": "r", "model_name": "m", "model_version": "1", "predictions": [0, 1]}',
            "2 predictions for one record",
        ),
        (
            b'{"request_id": "r", "model_name": "m", "model_version": "2", "predictions": [0]}',
            "scored by model v2, /ready said v1",
        ),
        (
            b'{"request_id": "r", "model_name": "m", "model_version": "1", "predictions": [0],'
            b' "probabilities": [[0.5, 0.6]]}',
            "are not one row summing to 1",
        ),
    ],
)
def test_answer_shape_is_checked(body: bytes, message: str) -> None:
    with pytest.raises(SmokeError, match=message):
        check_answer(httpx.Response(200, content=body), "1")
