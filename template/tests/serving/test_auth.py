"""API keys with roles (serving/auth.py): API_KEY on a real server, then the route x key x
role matrix in process, the key file's rules and make-key; and the `unknown_categories:
ignore` policy of the keyed server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app as cli
from {{ cookiecutter.package_name }}.serving import routes, server, v2_routes
from {{ cookiecutter.package_name }}.serving.app import api_document, create_app, mount
from {{ cookiecutter.package_name }}.serving.auth import (
    KeyFileError,
    KeyRing,
    KeyRole,
    guard,
    hash_key,
    make_key,
    read_key_files,
)
from {{ cookiecutter.package_name }}.serving.settings import ServingSettings

from .conftest import API_KEY, RunningServer
from .test_app import RECORD
from .test_v2 import NAME, v2_request

V2_REQUEST = v2_request()


def test_predict_needs_the_key(keyed_server: RunningServer) -> None:
    with keyed_server.client() as http:
        missing = http.post("/predict", json=RECORD)
        assert missing.status_code == 401
        assert "www-authenticate" in missing.headers
        wrong = http.post("/predict", json=RECORD, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        assert http.get("/model").status_code == 401
        right = http.post("/predict", json=RECORD, headers={"X-API-Key": API_KEY})
        assert right.status_code == 200


def test_probes_stay_open(keyed_server: RunningServer) -> None:
    with keyed_server.client() as http:
        assert http.get("/health").status_code == 200
        assert http.get("/ready").status_code == 200
        assert http.get("/metrics").status_code == 200


def test_admin_routes_do_not_exist_without_admin_token(keyed_server: RunningServer) -> None:
    with keyed_server.client() as http:
        response = http.post("/admin/reload", headers={"Authorization": "Bearer guess"})
        paths = http.get("/openapi.json").json()["paths"]
    assert response.status_code == 404
    assert "/admin/reload" not in paths


def test_unknown_category_is_ignored_under_that_policy(keyed_server: RunningServer) -> None:
    with keyed_server.client(headers={"X-API-Key": API_KEY}) as http:
        unknown = http.post("/predict", json={**RECORD, "employment_type": "astronaut"})
        missing = http.post("/predict", json={**RECORD, "employment_type": None})
    assert unknown.status_code == 200
    assert unknown.json()["probabilities"] == missing.json()["probabilities"]


# In process from here: the route x key x role matrix, the key file's rules, make-key.

KEYS = {  # role -> its keys: one from the environment where the role has one, one from a file
    KeyRole.PREDICT: ("env-predict-key", "file-predict-key"),
    KeyRole.ADMIN: ("env-admin-key", "file-admin-key"),
    KeyRole.METRICS: ("env-metrics-key", "file-metrics-key"),
}
# Each guarded route's role, and a request it answers 2xx to with the right key: a new
# guarded route goes here (the test below fails until it does).
REQUESTS: dict[str, tuple[KeyRole, str, dict[str, Any]]] = {
    "/predict": (KeyRole.PREDICT, "POST", {"json": RECORD}),
    "/model": (KeyRole.PREDICT, "GET", {}),
    "/explain": (KeyRole.PREDICT, "POST", {"json": RECORD}),
    "/metrics": (KeyRole.METRICS, "GET", {}),
    "/admin/reload": (KeyRole.ADMIN, "POST", {}),
    "/admin/canary": (KeyRole.ADMIN, "PUT", {"json": {"percent": 0}}),
    "/v2/models/{name}": (KeyRole.PREDICT, "GET", {}),
    "/v2/models/{name}/ready": (KeyRole.PREDICT, "GET", {}),
    "/v2/models/{name}/infer": (KeyRole.PREDICT, "POST", {"json": V2_REQUEST}),
    "/v2/models/{name}/versions/{version}": (KeyRole.PREDICT, "GET", {}),
    "/v2/models/{name}/versions/{version}/ready": (KeyRole.PREDICT, "GET", {}),
    "/v2/models/{name}/versions/{version}/infer": (KeyRole.PREDICT, "POST", {"json": V2_REQUEST}),
}
OPEN = {"/health", "/ready", "/v2", "/v2/health/live", "/v2/health/ready"}


def _url(path: str) -> str:
    """A route's path with the served model's name and version in it."""
    return path.replace("{name}", NAME).replace("{version}", "1")


@pytest.fixture(scope="module")
def guarded_app(
    tmp_path_factory: pytest.TempPathFactory, export_dir: Path, export_v2: Path
) -> FastAPI:
    """Every role guarded, with keys from the environment's settings and from a key file."""
    key_file = tmp_path_factory.mktemp("keys") / "api-keys"
    key_file.write_text(
        "# rotated in 2026-11\n"
        + "".join(f"{role}:{hash_key(keys[1])}\n" for role, keys in KEYS.items())
    )
    key_file.chmod(0o600)
    settings = ServingSettings(
        model_dir=export_dir,
        canary_model_dir=export_v2,
        prediction_log_dir=None,
        api_key=KEYS[KeyRole.PREDICT][0],
        admin_token=KEYS[KeyRole.ADMIN][0],
        metrics_token=KEYS[KeyRole.METRICS][0],
        api_keys_file=key_file,
    )
    return create_app(settings)


def test_every_route_is_guarded_or_a_probe(guarded_app: FastAPI) -> None:
    operations = [
        (path, method.upper(), operation)
        for path, item in guarded_app.openapi()["paths"].items()
        for method, operation in item.items()
    ]
    assert {path for path, _, operation in operations if "security" not in operation} == OPEN
    guarded = {(path, method) for path, method, operation in operations if "security" in operation}
    assert guarded == {(path, method) for path, (_, method, _) in REQUESTS.items()}


def _credentials(role: KeyRole) -> list[tuple[str, dict[str, str], int]]:
    """(what, headers, expected status) for a route of `role`; keys alternate headers."""
    cases = [
        ("no key", {}, 401),
        ("wrong key", {"X-API-Key": "not-a-key"}, 401),
        ("wrong bearer", {"Authorization": "Bearer not-a-key"}, 401),
        ("empty key", {"X-API-Key": ""}, 401),
        ("two headers", {"X-API-Key": KEYS[role][0], "Authorization": "Bearer not-a-key"}, 401),
    ]
    for other, keys in KEYS.items():
        for number, key in enumerate(keys):
            header = {"X-API-Key": key} if number == 0 else {"Authorization": f"Bearer {key}"}
            expected = 200 if other is role else 403
            cases.append((f"{other} key {number}", header, expected))
    return cases


@pytest.mark.parametrize("path", REQUESTS)
def test_route_key_role_matrix(guarded_app: FastAPI, path: str) -> None:
    role, method, body = REQUESTS[path]

    async def statuses() -> list[tuple[str, int, int, str]]:
        transport = httpx.ASGITransport(app=guarded_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            seen = []
            for what, headers, expected in _credentials(role):
                answer = await http.request(method, _url(path), headers=headers, **body)
                seen.append((what, expected, answer.status_code, answer.text))
            return seen

    for what, expected, status, text in asyncio.run(statuses()):
        assert status == expected, f"{method} {path} with {what}: {status} {text}"
        if status in (401, 403):
            # Neither answer tells which keys exist or what they look like.
            assert not any(key in text for keys in KEYS.values() for key in keys)


def test_openapi_declares_both_headers_on_guarded_routes(guarded_app: FastAPI) -> None:
    document = guarded_app.openapi()
    assert set(document["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    for path, (_, method, _) in REQUESTS.items():
        operation = document["paths"][path][method.lower()]
        assert operation["security"] == [{"ApiKey": []}, {"Bearer": []}], path
        assert {"401", "403"} <= set(operation["responses"]), path
    assert "security" not in document["paths"]["/health"]["get"]


def test_make_key_gives_a_line_that_grants_the_key(tmp_path: Path) -> None:
    key, line = make_key(KeyRole.METRICS)
    assert key not in line
    assert len(key) >= 40
    (tmp_path / "keys").write_text(line + "\n")
    ring = KeyRing(tuple(read_key_files(tmp_path / "keys")))
    assert ring.roles_of(key) == {KeyRole.METRICS}
    assert ring.roles_of(key + "x") == set()


def test_make_key_command() -> None:
    made = CliRunner().invoke(cli, ["make-key", "--role", "admin"])
    assert made.exit_code == 0, made.output
    key = made.output.splitlines()[0].rpartition(" ")[2]
    assert made.output.splitlines()[1] == f"line for API_KEYS_FILE: admin:{hash_key(key)}"
    refused = CliRunner().invoke(cli, ["make-key", "--role", "reader"])
    assert refused.exit_code == 1
    assert "--role reader: not one of predict, admin, metrics" in refused.output


def test_a_key_file_that_is_not_text_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "api-keys"
    path.write_bytes(b"predict:\xff\xfe")
    with pytest.raises(KeyFileError, match=f"^{path}: cannot be read as text"):
        read_key_files(path)


def test_a_folder_of_key_files_as_kubernetes_mounts_a_secret(tmp_path: Path) -> None:
    # kubelet's layout: each Secret key a symlink into a hidden, timestamped folder.
    data = tmp_path / "..2026_11_26_16_00_00.1"
    data.mkdir()
    (data / "predict-2026-10").write_text(f"predict:{hash_key('old')}\n")
    (data / "predict-2026-11").write_text(f"predict:{hash_key('new')}\nadmin:{hash_key('new')}")
    (tmp_path / "..data").symlink_to(data.name)
    for name in ("predict-2026-10", "predict-2026-11"):
        (tmp_path / name).symlink_to(f"..data/{name}")
    ring = KeyRing(tuple(read_key_files(tmp_path)))
    assert ring.roles_of("old") == {KeyRole.PREDICT}
    assert ring.roles_of("new") == {KeyRole.PREDICT, KeyRole.ADMIN}


@pytest.mark.parametrize(
    "line",
    [
        "reader:" + "a" * 64,  # no such role
        "predict:" + "a" * 63,  # a digit short
        "predict " + "a" * 64,  # no colon
        "sk-live-key-pasted-in-clear",  # a key, not its hash
    ],
)
def test_a_malformed_key_file_names_the_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "api-keys"
    path.write_text(f"# keys\n\npredict:{hash_key('k')}\n{line}\n")
    with pytest.raises(KeyFileError, match=rf"^{path}, line 4: expected `role:sha256hex`") as info:
        read_key_files(path)
    assert line not in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file or folder"), ("# nothing yet\n", "holds no key")],
)
def test_a_missing_or_empty_key_file_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, message: str
) -> None:
    path = tmp_path / "api-keys"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("API_KEYS_FILE", str(path))
    monkeypatch.setenv("SERVING_CONFIG", "none")
    with pytest.raises(SystemExit, match=f"error: API_KEYS_FILE={path}: {message}"):
        server.main()


def test_a_key_file_others_can_read_gets_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "api-keys"
    path.write_text(f"admin:{hash_key('k')}\n")
    path.chmod(0o640)  # the owner and its group (Kubernetes' fsGroup): no warning
    read_key_files(path)
    assert not caplog.records
    path.chmod(0o644)
    read_key_files(path)
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    assert (warning.path, warning.mode) == (str(path), "0644")  # type: ignore[attr-defined]


def test_the_docs_api_page_lists_every_route_the_service_serves(guarded_app: FastAPI) -> None:
    """api_document (the docs' API reference) mounts the same routers, without a model."""

    def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
        return {(path, method) for path, item in document["paths"].items() for method in item}

    assert operations(api_document()) == operations(guarded_app.openapi())


def test_mount_says_what_include_router_says() -> None:
    """create_app adds each router's routes to the app's own list (app.mount): the document
    (bodies, responses, tags, the guard's 401 and 403) is the one include_router gives."""
    keys = KeyRing(tuple((role, bytes.fromhex(hash_key(f"{role}-key"))) for role in KeyRole))
    routers = [
        (routes.model, KeyRole.PREDICT),
        (routes.ops, None),
        (routes.scrape, KeyRole.METRICS),
        (v2_routes.health, None),
        (v2_routes.models, KeyRole.PREDICT),
        (routes.admin, KeyRole.ADMIN),
    ]
    included, mounted = FastAPI(), FastAPI()
    for router, role in routers:
        guarded = guard(role, keys) if role is not None else {}
        included.include_router(router, **guarded)
        mount(mounted, router, **guarded)
    assert mounted.openapi() == included.openapi()
    assert "/predict" in {getattr(route, "path", None) for route in mounted.router.routes}
