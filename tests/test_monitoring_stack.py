"""The generated monitoring/ stack, with Debian's real Prometheus and Alertmanager.

On the shared default project (projects.py): its configs pass promtool and amtool, and its
rules' unit tests pass (`make check-monitoring`); every metric the dashboard and the rules
name is one the live service exports or a rule records; and, end to end on loopback, a real
Prometheus scrapes the real service while it receives traffic with one feature shifted, the
drift alert fires and a real Alertmanager delivers it, with the token, to a webhook.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from blueprint import ENV
from projects import DEMO, Demo, locked, sh
from system import skip_without

pytestmark = pytest.mark.slow

ALERTMANAGER = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")


def require(*tools: str | None) -> None:
    if not all(tool and shutil.which(tool) for tool in tools):
        skip_without("prometheus", "prometheus-alertmanager")


SHIFTED = "loan_amount"  # the feature the drifted traffic moves
TOKEN = "test-retrain-token"
# Made by Prometheus itself, not by the service.
PROMETHEUS_SERIES = {"up"}
# PromQL words that are not metric names: operators, and aggregations (`sum by (x) (...)`).
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
_KEYWORDS |= {"unless", "bool", "offset", "inf", "nan", "sum", "min", "max", "avg", "count"}
_KEYWORDS |= {"group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def _post(url: str, body: Any) -> int:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _get(url)
            return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


class _Processes:
    """Processes a test starts, each in its own session, all stopped at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, command: list[str], cwd: Path
    ) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.folder / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=ENV,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # make and its children get the signal together
            )
        self.running.append(process)
        return process, log

    def stop(self) -> None:
        for process in reversed(self.running):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def service(demo: Demo, shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make serve` of the default project on a free port, with a metrics folder of its own
    (so its counters start at zero)."""
    processes = _Processes(tmp_path_factory.mktemp("monitoring-service"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # The service reads params.yaml as it starts; other tests change it for a moment.
    with locked(shared, DEMO):
        process, log = processes.start(
            "serve",
            ["make", "serve", f"PORT={port}", f"METRICS_DIR=logs/metrics-{port}"],
            demo.project,
        )
        _wait(f"{url}/ready", process, log)
    yield url
    processes.stop()


def test_configs_rules_and_their_unit_tests_pass(demo: Demo) -> None:
    require("promtool", "amtool")
    done = sh(["make", "check-monitoring"], demo.project)
    assert "SUCCESS" in done.stdout
    assert done.stdout.count("SUCCESS") >= 4, done.stdout  # config, rules, tests, alertmanager


def _metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: label matchers, grouping labels, ranges and
    strings removed first; names followed by "(" are functions."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    names = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?![a-zA-Z0-9_:]*\s*\()", expr)
    return {name for name in names if name not in _KEYWORDS and not re.fullmatch(r"\d.*", name)}


def _queries(project: Path) -> dict[str, str]:
    """Every PromQL expression of the dashboards and the rules, by where it is."""
    found: dict[str, str] = {}
    for dashboard in sorted((project / "monitoring" / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(dashboard.read_text())["panels"]:
            for target in panel["targets"]:
                found[f"{dashboard.name}: {panel['title']} ({target['refId']})"] = target["expr"]
    rules = yaml.safe_load((project / "monitoring" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found[f"alerts.yml: {rule.get('alert') or rule['record']}"] = rule["expr"]
    return found


def test_every_query_names_a_metric_the_service_exports(demo: Demo, service: str) -> None:
    assert _post(f"{service}/predict", demo.records) == 200
    exported = {
        line.split("{")[0].split(" ")[0]
        for line in _get(f"{service}/metrics").splitlines()
        if line and not line.startswith("#")
    }
    rules = yaml.safe_load((demo.project / "monitoring" / "alerts.yml").read_text())
    recorded = {
        rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule
    }
    known = exported | recorded | PROMETHEUS_SERIES
    queries = _queries(demo.project)
    assert len([q for q in queries if q.startswith("service.json")]) >= 10
    unknown = {where: sorted(_metric_names(expr) - known) for where, expr in queries.items()}
    assert not {where: names for where, names in unknown.items() if names}, sorted(exported)
    # The parser finds names at all (a regex that finds nothing would pass the check above).
    assert _metric_names(queries["alerts.yml: FeatureDrift"]) == {
        "feature:psi:10m",
        "feature:values:increase10m",
    }


# --- end to end ----------------------------------------------------------------------------


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.headers.get("Authorization", ""), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _test_configs(project: Path, folder: Path, ports: dict[str, int]) -> None:
    """The project's monitoring configs, copied with intervals a test can wait for and this
    test's ports: scrape and evaluation every second (from 15 s), every `for:` 0 s (from 10 m
    and more), Alertmanager's group waits 1 s (from 30 s and 5 m). The rules' expressions,
    windows and thresholds, and the routing, stay as generated."""
    source = project / "monitoring"
    prometheus = yaml.safe_load((source / "prometheus.yml").read_text())
    prometheus["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    prometheus["scrape_configs"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{ports['service']}"]}
    ]
    prometheus["alerting"]["alertmanagers"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{ports['alertmanager']}"]}
    ]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(prometheus))
    rules = yaml.safe_load((source / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    (folder / "alerts.yml").write_text(yaml.safe_dump(rules))
    manager = yaml.safe_load((source / "alertmanager.yml").read_text())
    manager["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1m")
    for route in manager["route"]["routes"]:
        route.update(group_wait="1s", group_interval="1s")
    retrain = next(r for r in manager["receivers"] if r["name"] == "retrain")
    retrain["webhook_configs"][0]["url"] = f"http://127.0.0.1:{ports['webhook']}/alertmanager"
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(manager))
    (folder / "retrain_token").write_text(TOKEN)  # credentials_file: relative to the config


def _drifted_batches(project: Path, rows: int) -> list[dict[str, Any]]:
    """Rows of the project's own sample generator, `SHIFTED` moved 5x up, in columns."""
    code = f"""
import json, sys
from credit_risk.data import make_sample
from credit_risk.schema import Contract
contract = Contract.load("schema.yaml")
table = make_sample(contract, {rows}, seed=7)[contract.feature_names]
column = contract.column("{SHIFTED}")
table["{SHIFTED}"] = (table["{SHIFTED}"] * 5).clip(upper=column.max)
table = table.astype(object).where(table.notna(), None)
print(json.dumps({{name: table[name].tolist() for name in contract.feature_names}}))
"""
    done = sh([str(project / ".venv" / "bin" / "python"), "-c", code], project)
    columns: dict[str, list[Any]] = json.loads(done.stdout)
    size = 100
    return [
        {"columns": {name: values[i : i + size] for name, values in columns.items()}}
        for i in range(0, rows, size)
    ]


def test_drifted_traffic_fires_the_alert_and_alertmanager_calls_the_webhook(
    demo: Demo, service: str, tmp_path: Path
) -> None:
    require("prometheus", "promtool", ALERTMANAGER)
    started = time.monotonic()
    batches = _drifted_batches(demo.project, 4000)
    ports = {
        "service": int(service.rsplit(":", 1)[1]),
        "prometheus": _free_port(),
        "alertmanager": _free_port(),
        "webhook": _free_port(),
    }
    _test_configs(demo.project, tmp_path, ports)
    _Webhook.received = []
    webhook = ThreadingHTTPServer(("127.0.0.1", ports["webhook"]), _Webhook)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    processes = _Processes(tmp_path)
    stop_traffic = threading.Event()

    def traffic() -> None:
        while not stop_traffic.is_set():
            for batch in batches:
                if stop_traffic.is_set():
                    return
                _post(f"{service}/predict", batch)
                time.sleep(0.05)

    sender = threading.Thread(target=traffic, daemon=True)
    try:
        manager, manager_log = processes.start(
            "alertmanager",
            [
                str(ALERTMANAGER),
                "--config.file=alertmanager.yml",
                f"--storage.path={tmp_path / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                "--cluster.listen-address=",
            ],
            tmp_path,
        )
        prometheus, prometheus_log = processes.start(
            "prometheus",
            [
                "prometheus",
                "--config.file=prometheus.yml",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            ],
            tmp_path,
        )
        _wait(f"http://127.0.0.1:{ports['alertmanager']}/-/ready", manager, manager_log)
        _wait(f"http://127.0.0.1:{ports['prometheus']}/-/ready", prometheus, prometheus_log)
        sender.start()
        deadline = time.monotonic() + 45
        while not _firing(_Webhook.received, "FeatureDrift") and time.monotonic() < deadline:
            time.sleep(0.5)
        alerts = _Webhook.received
        if not _firing(alerts, "FeatureDrift"):
            states = _get(f"http://127.0.0.1:{ports['prometheus']}/api/v1/alerts")
            pytest.fail(
                f"no drift alert reached the webhook in 45 s; Prometheus' alerts: {states}\n"
                f"{manager_log.read_text()[-3000:]}"
            )
    finally:
        stop_traffic.set()
        processes.stop()
        webhook.shutdown()
    # Only the shifted feature drifted; the alert came with the token and its labels.
    assert {a["labels"]["feature"] for a in _firing(alerts, "FeatureDrift")} == {SHIFTED}
    assert {auth for auth, _ in alerts} == {f"Bearer {TOKEN}"}
    assert all(a["labels"]["action"] == "retrain" for a in _firing(alerts, "FeatureDrift"))
    print(f"drift alert delivered in {time.monotonic() - started:.0f} s")


def _firing(received: list[tuple[str, dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [
        alert
        for _, body in received
        for alert in body["alerts"]
        if alert["status"] == "firing" and alert["labels"]["alertname"] == name
    ]
