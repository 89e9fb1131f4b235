"""/metrics of the real service: totals over workers, live drift counts, the model's age."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support import LOOPBACK_TLS

from {{ cookiecutter.package_name }}.schema import ColumnType, Contract
from {{ cookiecutter.package_name }}.serving.prediction_log import DROP_REASONS

from .conftest import API_KEY, CONTRACT, OTHER_KINDS, RunningServer
from .test_app import RECORD

REQUESTS = 20
_FEATURES = Contract.load(CONTRACT).features
CATEGORICAL = next(c.name for c in _FEATURES if c.type is ColumnType.CATEGORICAL)
NULLABLE = next(c.name for c in _FEATURES if c.nullable)
NUMERIC = next(c.name for c in _FEATURES if c.type is ColumnType.NUMERIC)


def _scrape(server: RunningServer) -> str:
    # A new connection each time: whichever worker accepts it answers.
    return httpx.get(f"{server.url}/metrics", timeout=10, verify=LOOPBACK_TLS).text


def _total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _answered(text: str) -> float:
    return _total(text, "http_requests_total", route="/predict", status="200")


def _settled(server: RunningServer, name: str, expected: float, **labels: str) -> float:
    """The total once the workers' drift counts are flushed (every second) or time is up."""
    deadline = time.monotonic() + 5
    while (value := _total(_scrape(server), name, **labels)) != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return value


def test_every_worker_is_counted(kind_servers: dict[str, RunningServer]) -> None:
    server = kind_servers[OTHER_KINDS[0]]  # started with two workers
    before = _scrape(server)
    rows_before = _total(before, "feature_values_total", feature=NUMERIC)
    scores_before = _total(before, "prediction_score_values_total")
    for _ in range(REQUESTS):
        response = httpx.post(f"{server.url}/predict", json=RECORD, timeout=10, verify=LOOPBACK_TLS)
        assert response.status_code == 200
    scrapes = [_scrape(server) for _ in range(4)]
    assert [_answered(text) - _answered(before) for text in scrapes] == [REQUESTS] * 4
    assert all("model_info{" in text for text in scrapes)
    # Drift counts reach the counters within a second, from whichever worker scored them.
    expected = rows_before + REQUESTS
    assert _settled(server, "feature_values_total", expected, feature=NUMERIC) == expected
    expected = scores_before + REQUESTS
    assert _settled(server, "prediction_score_values_total", expected) == expected
    # Gauges of the served model, once however many workers publish them.
    text = _scrape(server)
    shares = _total(text, "feature_reference_share", feature=NUMERIC)
    assert abs(shares - 1) < 1e-9
    assert abs(_total(text, "prediction_score_reference_share") - 1) < 1e-9
    stamp = _total(text, "model_data_timestamp_seconds")
    assert 0 < stamp < time.time()
    # The prediction log's losses, by reason, at 0 from the start in the workers' sum.
    for reason in DROP_REASONS:
        assert 'prediction_log_dropped_total{reason="' + reason + '"} 0.0' in text


def test_missing_values_and_refused_categories_by_feature(server: RunningServer) -> None:
    """`unknown_categories: reject`: the 422 is counted as an unknown value of the field."""
    before = _scrape(server)
    missing = _total(before, "feature_values_total", feature=NULLABLE, bin="missing")
    unknown = _total(before, "feature_values_total", feature=CATEGORICAL, bin="unknown")
    with server.client() as http:
        assert http.post("/predict", json={**RECORD, NULLABLE: None}).status_code == 200
        refused = http.post("/predict", json={**RECORD, CATEGORICAL: "never-seen"})
    assert refused.status_code == 422
    name = "feature_values_total"
    assert _settled(server, name, missing + 1, feature=NULLABLE, bin="missing") == missing + 1
    assert _settled(server, name, unknown + 1, feature=CATEGORICAL, bin="unknown") == unknown + 1


def test_unknown_categories_scored_as_missing_are_counted(keyed_server: RunningServer) -> None:
    """`unknown_categories: ignore`: scored, and counted apart from missing values."""
    name, labels = "feature_values_total", {"feature": CATEGORICAL}
    before = _scrape(keyed_server)
    unknown = _total(before, name, bin="unknown", **labels)
    missing = _total(before, name, bin="missing", **labels)
    batch = [{**RECORD, CATEGORICAL: "never-seen"}, {**RECORD, CATEGORICAL: None}, RECORD]
    with keyed_server.client(headers={"X-API-Key": API_KEY}) as http:
        response = http.post("/predict", json=batch)
    assert response.status_code == 200
    assert _settled(keyed_server, name, unknown + 1, bin="unknown", **labels) == unknown + 1
    assert _total(_scrape(keyed_server), name, bin="missing", **labels) == missing + 1
