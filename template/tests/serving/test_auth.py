"""API key and the `unknown_categories: ignore` policy, on a server configured for them."""

from __future__ import annotations

from .conftest import API_KEY, RunningServer
from .test_app import RECORD


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
