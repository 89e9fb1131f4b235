"""The prediction log: written off the request path, rotated by size, never blocking."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME, PredictionLog

from .conftest import RunningServer, wait_for_log_record
from .test_app import RECORD


def test_every_prediction_is_logged(server: RunningServer, client: httpx.Client) -> None:
    response = client.post("/predict", json=[RECORD, RECORD]).json()
    record = wait_for_log_record(
        server.workdir / "predictions" / LOG_FILE_NAME, response["request_id"]
    )
    assert record["model_version"] == "1"
    assert record["rows"] == 2
    assert record["inputs"]["age"] == [RECORD["age"]] * 2
    assert record["outputs"]["predictions"] == response["predictions"]
    assert record["outputs"]["probabilities"] == response["probabilities"]
    assert record["shadow"] is None
    assert isinstance(record["latency_ms"], float)
    assert "timestamp" in record


def test_log_rotates_by_size(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, max_bytes=2_000, backups=2, queue_size=1_000)
    log.start()
    for i in range(200):
        log.append({"request_id": str(i), "inputs": {"age": [i]}})
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [LOG_FILE_NAME, f"{LOG_FILE_NAME}.1", f"{LOG_FILE_NAME}.2"]
    newest = [json.loads(line) for line in (tmp_path / LOG_FILE_NAME).read_text().splitlines()]
    assert newest[-1]["request_id"] == "199"


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    dropped: list[int] = []
    log = PredictionLog(
        tmp_path, max_bytes=10_000, backups=1, queue_size=2, on_drop=lambda: dropped.append(1)
    )
    # Writer not started: the queue fills up and stays full.
    for i in range(5):
        log.append({"request_id": str(i)})
    assert len(dropped) == 3


def test_shutdown_writes_every_queued_line(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, max_bytes=10_000_000, backups=1, queue_size=5_000)
    for i in range(5_000):  # queued before the writer starts: all still waiting at close()
        log.append({"request_id": str(i), "inputs": {"age": [i]}})
    log.start()
    log.close()
    lines = (tmp_path / LOG_FILE_NAME).read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [str(i) for i in range(5_000)]


def test_dropped_records_are_counted_in_metrics(
    server: RunningServer, client: httpx.Client
) -> None:
    assert "prediction_log_dropped_total 0.0" in client.get("/metrics").text
