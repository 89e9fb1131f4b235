"""The prediction log: written off the request path, rotated by size, never blocking, never
deleting a segment unless told to."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from {{ cookiecutter.package_name }}.config import LogDurability
from {{ cookiecutter.package_name }}.serving.prediction_log import (
    DROP_REASONS,
    LOG_FILE_NAME,
    QUEUE_FULL,
    SEGMENT_GLOB,
    WRITE_ERROR,
    PredictionLog,
    segment_time,
)

from .conftest import RunningServer, wait_for_log_record
from .faults import finish, starve
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


def test_rotation_keeps_every_segment(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, max_bytes=2_000, backups=0, queue_size=1_000)
    log.start()
    for i in range(200):
        log.append({"request_id": str(i), "inputs": {"age": [i]}})
        if i % 20 == 19:  # let the writer take them in several batches
            time.sleep(0.06)
    log.close()
    files = sorted(tmp_path.iterdir())  # rotated segments sort by time, the active file last
    assert files[-1].name == LOG_FILE_NAME
    assert len(files) > 3
    assert all(segment_time(p.name) is not None for p in files[:-1])
    lines = [line for p in files for line in p.read_text().splitlines()]
    assert [json.loads(line)["request_id"] for line in lines] == [str(i) for i in range(200)]


def test_backups_bound_the_rotated_segments_without_monitoring(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, max_bytes=1_000, backups=2, queue_size=1_000)
    log.start()
    for i in range(100):
        log.append({"request_id": str(i)})
        if i % 10 == 9:
            time.sleep(0.06)
    log.close()
    assert len(list(tmp_path.glob(f"{SEGMENT_GLOB}.jsonl"))) == 2


WORKER = """
import sys, time
from pathlib import Path
from {{ cookiecutter.package_name }}.serving.prediction_log import PredictionLog
log = PredictionLog(
    Path(sys.argv[1]), max_bytes=3_000, backups=0, queue_size=1_000, durability=sys.argv[2]
)
log.start()
for i in range(300):
    log.append({"request_id": f"{sys.argv[2]}-{i}", "inputs": {"age": [i] * 5}})
    if i % 10 == 9:
        time.sleep(0.005)
log.close()
"""


def test_workers_rotate_one_file_and_lose_no_line(tmp_path: Path) -> None:
    """Three workers, one at each durability, appending to and rotating the same file."""
    levels = [level.value for level in LogDurability]
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), level]) for level in levels
    ]
    assert [worker.wait(30) for worker in workers] == [0, 0, 0]
    lines = [line for p in sorted(tmp_path.iterdir()) for line in p.read_text().splitlines()]
    ids = sorted(json.loads(line)["request_id"] for line in lines if line)  # each one whole
    assert ids == sorted(f"{level}-{i}" for level in levels for i in range(300))
    assert len(list(tmp_path.glob(SEGMENT_GLOB))) > 3


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    (tmp_path / LOG_FILE_NAME).write_bytes(b'{"request_id": "0", "inp')  # a crash mid-write
    log = PredictionLog(tmp_path, max_bytes=10_000, backups=0, queue_size=10)
    log.start()
    log.append({"request_id": "1"})
    log.close()
    last = (tmp_path / LOG_FILE_NAME).read_text().splitlines()[-1]
    assert json.loads(last)["request_id"] == "1"


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    dropped: list[tuple[str, int]] = []
    log = PredictionLog(
        tmp_path,
        max_bytes=10_000,
        backups=1,
        queue_size=2,
        durability=LogDurability.QUEUED,
        on_drop=lambda reason, records: dropped.append((reason, records)),
    )
    # Writer not started: the queue fills up and stays full.
    assert [log.append({"request_id": str(i)}) for i in range(5)] == [True] * 2 + [False] * 3
    assert dropped == [(QUEUE_FULL, 1)] * 3


def test_shutdown_writes_every_queued_line(tmp_path: Path) -> None:
    log = PredictionLog(
        tmp_path,
        max_bytes=10_000_000,
        backups=1,
        queue_size=5_000,
        durability=LogDurability.QUEUED,
    )
    for i in range(5_000):  # queued before the writer starts: all still waiting at close()
        log.append({"request_id": str(i), "inputs": {"age": [i]}})
    log.start()
    log.close()
    lines = (tmp_path / LOG_FILE_NAME).read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [str(i) for i in range(5_000)]


def test_dropped_records_are_counted_in_metrics(
    server: RunningServer, client: httpx.Client
) -> None:
    exposition = client.get("/metrics").text
    for reason in DROP_REASONS:  # at 0 from the start: the first loss is an increase
        assert 'prediction_log_dropped_total{reason="' + reason + '"} 0.0' in exposition


def test_a_write_failure_is_counted_exactly_and_leaves_no_torn_line(tmp_path: Path) -> None:
    """At every level, through a file size limit (EFBIG) and back: the records not written
    are the ones counted, every line is whole, the order is kept, writing resumes by itself,
    and the failure and the recovery are each said once."""
    parts = [
        [{"request_id": f"{part}-{i}", "inputs": {"age": [i] * 20}} for i in range(count)]
        for part, count in enumerate((10, 20, 10))
    ]
    levels = [level.value for level in LogDurability]
    writers = {level: starve(tmp_path / level, level, parts) for level in levels}
    for level, writer in writers.items():
        starved = finish(writer, tmp_path / level)
        lines = starved.lines()
        assert all(line.endswith(b"\n") for line in lines), level  # no torn line
        logged = [json.loads(line)["request_id"] for line in lines]
        missing = [rid for rid in starved.answered if rid not in logged]
        assert missing, f"{level}: the limit stopped no write"
        assert all(rid.startswith("1-") for rid in missing), level  # only under the limit
        assert logged == [rid for rid in starved.answered if rid not in missing], level
        assert sum(records for _, records in starved.lost) == len(missing), level
        assert {reason for reason, _ in starved.lost} == {WRITE_ERROR}, level
        assert starved.messages.count("prediction log cannot be written") == 1, level
        assert starved.messages.count("prediction log writable again") == 1, level
