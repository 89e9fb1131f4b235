"""The prediction log under faults, against the real service as an operator meets them: a
SIGKILL in the middle of load at each durability level, and a write failure (a file size
limit put on the running service, no root needed: its writes fail with EFBIG), answered
through or refused."""

from __future__ import annotations

import json
import resource
import signal
import threading
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest

from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME, WRITE_ERROR

from .conftest import RunningServer
from .test_app import RECORD
from .test_v2 import INFER, v2_request

LEVELS = ("queued", "process", "machine")
KILL_AFTER = 300  # answers before the SIGKILL
CLIENTS = 4
UNLIMITED = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)


@pytest.fixture(scope="module")
def fault_servers(
    tmp_path_factory: pytest.TempPathFactory, export_dir: Path
) -> Iterator[dict[str, RunningServer]]:
    """One server to kill at each level, one to starve that answers anyway and one that
    refuses (at the default level): started together, as start-up is mostly imports."""
    configs: dict[str, dict[str, str]] = {
        level: {"PREDICTION_LOG_DURABILITY": level} for level in LEVELS
    }
    # WARNING: no access log line a request, so the limit meets the prediction log first.
    configs["serve"] = {"LOG_LEVEL": "WARNING"}
    configs["refuse"] = {"LOG_LEVEL": "WARNING", "PREDICTION_LOG_ON_FAILURE": "refuse"}
    started = {}
    for name, env in configs.items():
        workdir = tmp_path_factory.mktemp(f"log-{name}")
        log_dir = str(workdir / "predictions")
        started[name] = RunningServer(
            {"MODEL_DIR": str(export_dir), "PREDICTION_LOG_DIR": log_dir, **env}, workdir
        )
    yield started
    for running in started.values():
        running.terminate()
    for running in started.values():
        running.stop()


def logged_ids(server: RunningServer) -> list[str]:
    """Request ids of the log's whole lines (a killed writer may leave an unfinished one)."""
    text = (server.workdir / "predictions" / LOG_FILE_NAME).read_text()
    return [json.loads(line)["request_id"] for line in text[: text.rfind("\n") + 1].splitlines()]


def dropped(http: httpx.Client, reason: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith('prediction_log_dropped_total{reason="' + reason + '"}'):
            return float(line.split()[-1])
    raise AssertionError(f"no prediction_log_dropped_total for {reason}")


def post(http: httpx.Client, request_id: str) -> httpx.Response:
    return http.post("/predict", json=RECORD, headers={"X-Request-ID": request_id})


@pytest.mark.parametrize("level", LEVELS)
def test_sigkill_under_load_loses_no_answered_prediction(
    fault_servers: dict[str, RunningServer], level: str
) -> None:
    """At `process` and `machine`, every request id that got a 200 is in the log; `queued`
    may lose its queue, and the test prints how much."""
    server = fault_servers[level].wait_healthy()
    answered: list[str] = []
    numbers = count()

    def client() -> None:
        with server.client() as http:
            while len(answered) < 20 * KILL_AFTER:  # bounded, should the kill not come
                request_id = f"{level}-{next(numbers)}"
                try:
                    response = post(http, request_id)
                except httpx.TransportError:
                    return  # killed
                assert response.status_code == 200, response.text
                answered.append(request_id)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(answered) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.01)
    server.process.send_signal(signal.SIGKILL)
    for thread in threads:
        thread.join(30)
    assert server.process.wait(10) == -signal.SIGKILL
    assert len(answered) >= KILL_AFTER
    lost = sorted(set(answered) - set(logged_ids(server)))
    print(f"{level}: SIGKILL after {len(answered)} answers; {len(lost)} not in the log")
    if level != "queued":
        assert lost == []


def starve(server: RunningServer, http: httpx.Client) -> None:
    """Answer until the log is larger than the service's own output file (which the limit
    binds too) with room to spare, then limit the service's file size to about a line and a
    half more than the log holds."""
    log = server.workdir / "predictions" / LOG_FILE_NAME
    for number in count():
        assert post(http, f"before-{number}").status_code == 200
        if log.stat().st_size > server.log_path.stat().st_size + 4_096:
            break
    size = log.stat().st_size
    limit = size + size // (number + 1) * 3 // 2
    resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def whole_lines(server: RunningServer) -> list[dict[str, Any]]:
    data = (server.workdir / "predictions" / LOG_FILE_NAME).read_bytes()
    assert data.endswith(b"\n"), data[-200:]  # no torn line
    return [json.loads(line) for line in data.splitlines()]


def test_a_write_failure_is_served_through_counted_and_recovered(
    fault_servers: dict[str, RunningServer],
) -> None:
    server = fault_servers["serve"].wait_healthy()
    with server.client() as http:
        starve(server, http)
        answers = [post(http, f"starved-{number}") for number in range(20)]
        assert [a.status_code for a in answers] == [200] * 20  # serving goes on
        assert http.get("/ready").status_code == 200
        logged = {line["request_id"] for line in whole_lines(server)}
        not_logged = [a.headers["x-request-id"] for a in answers]
        not_logged = [rid for rid in not_logged if rid not in logged]
        assert not_logged, "the limit stopped no write"
        assert dropped(http, WRITE_ERROR) == len(not_logged)

        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, UNLIMITED)
        for number in range(3):
            assert post(http, f"after-{number}").status_code == 200
        ids = [line["request_id"] for line in whole_lines(server)]
        assert ids[-3:] == [f"after-{number}" for number in range(3)]
        assert dropped(http, WRITE_ERROR) == len(not_logged)
    said = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    failures = [line for line in said if "cannot be written" in line.get("msg", "")]
    recoveries = [line for line in said if "writable again" in line.get("msg", "")]
    assert len(failures) == 1, server.log()  # once, not once a request
    assert "File too large" in failures[0]["error"]
    assert [line["records_lost"] for line in recoveries] == [len(not_logged)]


def test_refuse_mode_answers_503_while_the_log_cannot_be_written(
    fault_servers: dict[str, RunningServer],
) -> None:
    server = fault_servers["refuse"].wait_healthy()
    with server.client() as http:
        starve(server, http)
        answers = [post(http, f"starved-{number}") for number in range(10)]
        refused = [a for a in answers if a.status_code == 503]
        assert refused, "the limit stopped no write"
        assert {a.status_code for a in answers} <= {200, 503}
        assert "prediction log cannot be written" in refused[0].json()["detail"]
        ready = http.get("/ready")
        assert ready.status_code == 503
        assert "prediction log" in ready.json()["detail"]
        ids = {line["request_id"] for line in whole_lines(server)}
        # Every answer is on record; every refusal is counted.
        assert all(a.headers["x-request-id"] in ids for a in answers if a.status_code == 200)
        assert dropped(http, WRITE_ERROR) == len(refused)
        # The Open Inference Protocol goes the same path, and answers in its own error object.
        v2 = http.post(INFER, json=v2_request(), headers={"X-Request-ID": "starved-v2"})
        assert v2.status_code == 503
        assert "prediction log cannot be written" in v2.json()["error"]
        assert dropped(http, WRITE_ERROR) == len(refused) + 1

        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, UNLIMITED)
        assert http.get("/ready").status_code == 200  # it tried, and could write again
        assert post(http, "after").status_code == 200
        assert whole_lines(server)[-1]["request_id"] == "after"
