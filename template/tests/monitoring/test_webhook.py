"""The webhook receiver on a real uvicorn on loopback; the job it starts is a stand-in that
waits for the test, so no real `dvc repro` runs (the template suite's loop demo runs one)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from support import LOOPBACK_TLS
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.monitoring.trigger import Reason, Trigger
from {{ cookiecutter.package_name }}.monitoring.webhook import create_app

TOKEN = "retrain-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DRIFT = {"alertname": "FeatureDrift", "severity": "warning", "action": "retrain"}


def notification(*labels: dict[str, str], status: str = "firing") -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4), as it sends it."""
    alerts = [
        {
            "status": status,
            "labels": alert,
            "annotations": {"summary": "drift"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": f"{i:016x}",
        }
        for i, alert in enumerate(labels)
    ]
    return {
        "version": "4",
        "groupKey": '{}:{alertname="FeatureDrift"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "retrain",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


@dataclass
class Receiver:
    url: str
    started: list[Trigger] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    def job(self, trigger: Trigger) -> None:
        self.started.append(trigger)
        self.release.wait(30)
        self.finished.set()

    def post(self, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
        url = f"{self.url}/alertmanager"
        return httpx.post(url, json=body, headers=headers, timeout=10, verify=LOOPBACK_TLS)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    receiver = Receiver(f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        create_app(TOKEN, receiver.job, tmp_path / "retrain.lock"),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield receiver
    receiver.release.set()
    server.should_exit = True
    thread.join()


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer wrong"}])
def test_a_bad_token_gets_401_and_starts_nothing(
    receiver: Receiver, headers: dict[str, str] | None
) -> None:
    response = receiver.post(notification(DRIFT), headers)
    assert response.status_code == 401
    assert receiver.started == []


def test_two_alerts_at_once_start_one_retrain(receiver: Receiver) -> None:
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def send() -> None:
        barrier.wait()
        statuses.append(receiver.post(notification(DRIFT), AUTH).status_code)

    senders = [threading.Thread(target=send) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()

    assert sorted(statuses) == [202, 409]
    (trigger,) = receiver.started
    assert trigger.reason is Reason.ALERT
    assert trigger.alerts == (DRIFT,)
    # Once that retrain ends, the next alert starts another.
    receiver.release.set()
    assert receiver.finished.wait(10)
    deadline = time.monotonic() + 10
    while (status := receiver.post(notification(DRIFT), AUTH).status_code) == 409:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status == 202


@pytest.mark.parametrize(
    "body",
    [
        notification({"alertname": "HighLatency", "severity": "page"}),
        notification(DRIFT, status="resolved"),
    ],
    ids=["no-retrain-label", "resolved"],
)
def test_other_alerts_are_ignored(receiver: Receiver, body: dict[str, Any]) -> None:
    response = receiver.post(body, AUTH)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert receiver.started == []


def test_a_body_that_is_not_alertmanagers_gets_422(receiver: Receiver) -> None:
    response = receiver.post({"alerts": "nope"}, AUTH)
    assert response.status_code == 422
    assert "status" in response.text
    assert receiver.started == []


def test_the_receiver_refuses_to_start_without_a_token() -> None:
    result = CliRunner().invoke(app, ["webhook"], env={"RETRAIN_TOKEN": ""})
    assert result.exit_code == 1
    assert "RETRAIN_TOKEN" in result.stderr
