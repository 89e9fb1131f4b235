"""A canary beside the stable model: its share of the traffic, sticky per caller, changed live,
and every metric and log line labelled with the role and the model version."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.canary import CanarySplit
from {{ cookiecutter.package_name }}.serving.model_store import ModelLoadError, load_model_dir
from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME
from {{ cookiecutter.package_name }}.serving.runtime import ModelSlot
from {{ cookiecutter.package_name }}.serving.settings import Role, ServingSettings, SettingsError, load_settings

from .conftest import ADMIN_TOKEN, OTHER_KINDS, RunningServer, cached_export
from .test_app import RECORD

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DRAWS = 20_000


@pytest.fixture(scope="module")
def split(export_dir: Path, export_v2: Path) -> CanarySplit:
    stable, canary = load_model_dir(export_dir), load_model_dir(export_v2)
    return CanarySplit(
        ModelSlot(stable, lambda: stable), ModelSlot(canary, lambda: canary), 10, Role.STABLE
    )


def _canary_share(split: CanarySplit, callers: list[str | None]) -> float:
    roles = Counter(split.choose(caller).role for caller in callers)
    return roles[Role.CANARY] / len(callers)


def test_the_share_holds_with_and_without_caller_ids(split: CanarySplit) -> None:
    split.set_percent(10)
    # 20,000 draws: one standard deviation of the share is 0.2 points; 1 point is five.
    assert abs(_canary_share(split, [None] * DRAWS) - 0.10) < 0.01
    assert abs(_canary_share(split, [f"caller-{i}" for i in range(DRAWS)]) - 0.10) < 0.01


def test_a_caller_stays_where_it_was_sent(split: CanarySplit) -> None:
    split.set_percent(10)
    callers = [f"caller-{i}" for i in range(2_000)]
    first = {caller: split.choose(caller).role for caller in callers}
    assert all(split.choose(caller).role is first[caller] for caller in callers)
    # A larger share adds callers to the canary and moves none of its callers back.
    split.set_percent(30)
    assert all(
        split.choose(caller).role is Role.CANARY
        for caller in callers
        if first[caller] is Role.CANARY
    )
    split.set_percent(0)
    assert {split.choose(caller).role for caller in callers} == {Role.STABLE}


def test_a_share_out_of_range_is_refused(split: CanarySplit) -> None:
    with pytest.raises(ValueError, match="within 0-100, not 101"):
        split.set_percent(101)


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _predict_roles(http: httpx.Client, text: str) -> dict[tuple[str, str], float]:
    return {
        (labels["role"], labels["model_version"]): value
        for labels, value in _samples(text, "http_requests_total")
        if labels["route"] == "/predict" and labels["status"] == "200"
    }


def test_both_models_answer_and_every_label_says_which(canary_server: RunningServer) -> None:
    server = canary_server
    with server.client() as http:
        before = _predict_roles(http, http.get("/metrics").text)
        answers: dict[str, list[str]] = {}
        request_versions: dict[str, str] = {}
        for _ in range(2):
            for i in range(30):
                caller = f"caller-{i}"
                response = http.post("/predict", json=RECORD, headers={"X-Caller-Id": caller})
                assert response.status_code == 200, response.text
                body = response.json()
                answers.setdefault(caller, []).append(body["model_version"])
                request_versions[body["request_id"]] = body["model_version"]
        text = http.get("/metrics").text
        model = http.get("/model").json()

    # Sticky: each caller got the same model twice; at 50%, both models answered someone.
    assert all(len(set(versions)) == 1 for versions in answers.values())
    served = Counter(versions[0] for versions in answers.values())
    assert set(served) == {"1", "2"}
    after = _predict_roles(http, text)
    for role, version in (("stable", "1"), ("canary", "2")):
        counted = after.get((role, version), 0) - before.get((role, version), 0)
        assert counted == 2 * served[version]
    roles = {
        labels["role"]: labels["model_version"] for labels, _ in _samples(text, "predictions_total")
    }
    assert roles == {"stable": "1", "canary": "2"}
    score_roles = {labels["role"] for labels, _ in _samples(text, "prediction_score_count")}
    assert score_roles == {"stable", "canary"}
    assert model["version"] == "1"
    assert model["role"] == "stable"
    assert model["canary"] == {"name": model["name"], "version": "2", "percent": 50.0}

    log = server.workdir / "predictions" / LOG_FILE_NAME
    _wait_for_lines(log, set(request_versions))
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if record["request_id"] in request_versions:
            assert record["model_version"] == request_versions[record["request_id"]]
            assert record["role"] == ("canary" if record["model_version"] == "2" else "stable")


def _wait_for_lines(log: Path, request_ids: set[str]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if log.exists() and request_ids <= {
            json.loads(line)["request_id"] for line in log.read_text().splitlines()
        }:
            return
        time.sleep(0.05)
    raise AssertionError(f"{log}: not every request was logged")


def test_the_share_changes_live(canary_server: RunningServer) -> None:
    with canary_server.client() as http:
        assert http.put("/admin/canary", json={"percent": 0}).status_code == 401
        assert http.put("/admin/canary", json={"percent": 150}, headers=ADMIN).status_code == 422
        try:
            for percent, expected in ((0, {"1"}), (100, {"2"})):
                changed = http.put("/admin/canary", json={"percent": percent}, headers=ADMIN)
                assert changed.status_code == 200, changed.text
                assert changed.json()["percent"] == percent
                assert changed.json()["canary_version"] == "2"
                versions = {
                    http.post("/predict", json=RECORD).json()["model_version"] for _ in range(20)
                }
                assert versions == expected
                assert http.get("/model").json()["canary"]["percent"] == percent
            reloaded = http.post("/admin/reload", headers=ADMIN).json()
            assert reloaded == {
                "previous_version": "1",
                "model_version": "1",
                "canary_version": "2",
            }
        finally:
            http.put("/admin/canary", json={"percent": 50}, headers=ADMIN)


def test_a_canary_process_labels_everything_canary(export_v2: Path) -> None:
    settings = ServingSettings(
        model_dir=export_v2, serving_role=Role.CANARY, prediction_log_dir=None
    )

    async def calls() -> tuple[str, dict[str, Any], str, int]:
        # In process, without the lifespan: nothing here needs the log or the drift threads.
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://canary") as http:
            answer = (await http.post("/predict", json=RECORD)).json()["model_version"]
            model = (await http.get("/model")).json()
            text = (await http.get("/metrics")).text
            refused = (await http.put("/admin/canary", json={"percent": 10})).status_code
        return answer, model, text, refused

    answer, model, text, refused = asyncio.run(calls())
    assert answer == "2"
    assert (model["role"], model["canary"]) == ("canary", None)
    assert {labels["role"] for labels, _ in _samples(text, "http_requests_total")} == {"canary"}
    assert {labels["role"] for labels, _ in _samples(text, "predictions_total")} == {"canary"}
    assert refused == 404  # no ADMIN_TOKEN, no admin routes


def test_a_canary_on_another_contract_does_not_start(
    pytestconfig: pytest.Config, export_dir: Path
) -> None:
    other = cached_export(pytestconfig, "1", OTHER_KINDS[0])
    settings = ServingSettings(
        model_dir=export_dir, canary_model_dir=other, prediction_log_dir=None
    )
    with pytest.raises(
        ModelLoadError, match=f"CANARY_MODEL_DIR={other}: .*different data contract"
    ):
        create_app(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CANARY_PERCENT": "10"}, "canary_percent: 10% of the traffic needs a canary model"),
        ({"CANARY_PERCENT": "101", "CANARY_MODEL_DIR": "m"}, "canary_percent: Input should be"),
        ({"SERVING_ROLE": "blue"}, "serving_role: Input should be 'stable' or 'canary'"),
        (
            {"SERVING_ROLE": "canary", "CANARY_MODEL_DIR": "m"},
            "SERVING_ROLE=canary serves MODEL_DIR as the canary",
        ),
    ],
)
def test_bad_canary_settings_name_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings(tmp_path / "absent.yaml")
