"""`make loop-demo`: the whole loop on this machine, each step printed as it happens.

1. Serve the champion: a real uvicorn on loopback, prediction log on, admin route on.
2. Send traffic from the sample generator (`data.make_sample`) with the loan amounts scaled: a
   drift whose answer is known (loan_amount, and no other feature).
3. Monitor the window of that traffic: loan_amount must be flagged, and no other feature.
4. New labelled data arrives in the inbox: the same drifted distribution, outcomes drawn from
   the same risk, ids no earlier row has.
5. Retrain (reason: drift, with the report), through the same contract and the same gate.
6. The gate promotes a new champion or refuses it, with its reasons.
7. Traffic keeps flowing through the retrain and the swap: the demo counts the requests that
   failed (it fails itself unless none did) and checks the service serves the champion.

Everything runs as a user would run it: the service and the commands are separate processes.
The demo needs the sample's contract (it runs on the project `make all` made).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from ..config import Params
from ..data import make_sample, read_table, write_table
from ..schema import Contract
from .reference import load_reference

PACKAGE = __package__.rsplit(".", 1)[0] if __package__ else "{{ cookiecutter.package_name }}"
COMMAND = Path(sys.executable).with_name("{{ cookiecutter.project_slug }}")
DRIFTED = "loan_amount"
BATCH = 25
# A steady trickle, not a flood: the retrain shares the machine with the service.
PACE_S = 0.005


class DemoError(RuntimeError):
    """A step of the loop did not do what it must; the message says which and why."""


def say(text: str) -> None:
    # Flushed at once: the commands the demo runs write to the same terminal in between.
    print(text, flush=True)


def step(number: int, text: str) -> None:
    say(f"\n[{number}/7] {text}")


@dataclass
class Traffic:
    """Single-record requests sent from a thread until stopped; failures counted, not raised."""

    client: httpx.Client
    records: list[dict[str, Any]]
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            record = self.records[self.sent % len(self.records)]
            try:
                answer = self.client.post("/predict", json=record)
                if answer.status_code != 200:
                    self.failed.append(f"{answer.status_code}: {answer.text[:200]}")
            except httpx.HTTPError as exc:
                self.failed.append(repr(exc))
            self.sent += 1
            time.sleep(PACE_S)

    @contextmanager
    def flowing(self) -> Iterator[Traffic]:
        worker = threading.Thread(target=self.run, daemon=True)
        worker.start()
        try:
            yield self
        finally:
            self._stop.set()
            worker.join()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(params: Params, model_dir: Path, admin_token: str) -> Iterator[httpx.Client]:
    """The champion behind a real uvicorn on loopback, stopped at the end; its prediction log
    goes where the monitor reads, its access log stays quiet so the steps can be read."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="loop-demo-metrics-") as metrics:
        env = {
            **os.environ,
            "MODEL_DIR": str(model_dir),
            "PREDICTION_LOG_DIR": str(params.monitoring.log.directory),
            "ADMIN_TOKEN": admin_token,
            "LOG_LEVEL": "WARNING",
            "PROMETHEUS_MULTIPROC_DIR": metrics,
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, "-m", "uvicorn", "--factory"]
        command += [f"{PACKAGE}.serving.app:create_app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--log-level", "warning"]
        server = subprocess.Popen(command, env=env)  # noqa: S603 (our own interpreter)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        try:
            _wait_until_ready(client, server)
            yield client
        finally:
            client.close()
            server.terminate()
            server.wait(timeout=30)


def _wait_until_ready(client: httpx.Client, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoError(f"the service exited with code {server.returncode} at start")
        try:
            if client.get("/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError("the service was not ready within 60 s")


def records(table: pd.DataFrame, contract: Contract) -> list[dict[str, Any]]:
    """Rows as the API takes them: every column but the target, missing values as null."""
    inputs = table.drop(columns=[contract.target.name])
    frame = inputs.astype(object).where(inputs.notna(), None)
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def send(client: httpx.Client, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        answer = client.post("/predict", json=rows[start : start + BATCH])
        if answer.status_code != 200:
            raise DemoError(f"POST /predict answered {answer.status_code}: {answer.text[:300]}")


def run_command(*arguments: str, env: dict[str, str] | None = None) -> None:
    """One of the project's commands, its output shown as it comes; DemoError if it fails."""
    say(f"$ {COMMAND.name} {' '.join(arguments)}")
    command = [str(COMMAND), *arguments]
    code = subprocess.run(command, env={**os.environ, **(env or {})}, check=False).returncode  # noqa: S603
    if code != 0:
        raise DemoError(f"`{COMMAND.name} {arguments[0]}` failed with exit code {code}")


def read_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def run_loop(params: Params, model_dir: Path, rows: int, scale: float, seed: int) -> None:
    """The seven steps; DemoError when one does not do what it must."""
    reference = load_reference(model_dir, params)
    contract = reference.contract
    sample = make_sample(contract, 1, seed)
    if list(sample.columns) != list(reference.table.columns):
        raise DemoError("the loop demo draws from the sample generator: the contract has changed")
    reports = Path("reports")
    token = secrets.token_urlsafe(16)

    step(1, f"serve champion v{reference.version} on loopback (prediction log on)")
    with serving(params, model_dir, token) as client:
        say(f"ready at {client.base_url}")
        since = datetime.now(UTC)
        step(2, f"traffic: {rows} rows from the sample generator, {DRIFTED} x{scale}")
        drifted = make_sample(contract, rows, seed, loan_scale=scale)
        send(client, records(drifted, contract))
        say(f"sent {rows} rows in batches of {BATCH}")
        time.sleep(0.3)  # the log writer gathers records for 50 ms before it writes them

        step(3, "monitor the window of that traffic")
        run_command("monitor", "--since", since.isoformat())
        report = read_json(reports / "drift.json")
        flagged = report["drifted_features"]
        if flagged != [DRIFTED]:
            raise DemoError(
                f"expected drift in {DRIFTED} alone; flagged: {', '.join(flagged) or 'nothing'}"
                " (a champion trained on earlier loops' rows needs a larger --scale)"
            )
        say(f"verdict {report['verdict']}: {DRIFTED} drifted, no other feature did")

        step(4, "new labelled data arrives in the inbox")
        raw = read_table(params.data.raw)  # earlier loops may have added ids beyond the reference's
        first_id = 1 + int(pd.to_numeric(raw[contract.id]).max()) if contract.id else 1
        labelled = make_sample(contract, rows, seed + 1, loan_scale=scale, first_id=first_id)
        arrived = params.monitoring.retrain.inbox / f"loop-demo-{since:%Y%m%dT%H%M%S}.csv"
        write_table(labelled, arrived)
        say(f"{rows} labelled rows -> {arrived}")

        step(5, "retrain (reason: drift), through the same contract and gate")
        traffic = Traffic(client, records(drifted, contract))
        service = {"SERVICE_URL": str(client.base_url), "ADMIN_TOKEN": token}
        with traffic.flowing():
            why = str(reports / "drift.json")
            run_command("retrain", "--reason", "drift", "--report", why, env=service)

        decision = read_json(reports / "decision.json")
        step(6, f"the gate {decision['outcome']} v{decision['version']}")
        for reason in decision["reasons"]:
            say(f"  - {reason}")

        step(7, "the running service after the retrain")
        served = str(client.get("/model").json()["version"])
        champion = decision["version"] if decision["promoted"] else reference.version
        failed = len(traffic.failed)
        say(f"serving v{served}; {traffic.sent} requests during the retrain, {failed} failed")
        if traffic.failed:
            raise DemoError(f"{failed} requests failed, the first: {traffic.failed[:3]}")
        if served != str(champion):
            raise DemoError(f"the service serves v{served}, the registry's champion is v{champion}")
