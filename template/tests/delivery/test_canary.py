"""canary-verdict against a real Prometheus on loopback (Debian's `prometheus` package).

The service's series for both roles are written as OpenMetrics text for twenty minutes ending
now, one scrape job a scenario, turned into a TSDB block by `promtool tsdb create-blocks-from
openmetrics`, and served by Prometheus from that data directory: deterministic, and a few
seconds in all, where scraping a live service for ten minutes would not be.
"""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from support import LOOPBACK_TLS, project_params
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import CanaryParams
from {{ cookiecutter.package_name }}.delivery.canary import Outcome, population_stability

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="needs Debian's prometheus package (prometheus and promtool on PATH)",
)

STEP_S = 15
STEPS = 80  # twenty minutes of scrapes, so a 10m window sees only full data
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
SCORE_BOUNDS = tuple(i / 10 for i in range(1, 11))
# Shares of requests a latency bucket: p99 falls on the 50 ms bound (histogram_quantile).
HEALTHY_LATENCY = (0.2, 0.5, 0.2, 0.06, 0.02, 0.01, 0.01, 0.0)
HEALTHY_SCORES = (0.3, 0.2, 0.12, 0.1, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02)


@dataclass(frozen=True)
class Traffic:
    """One role's traffic: requests a second, the 5xx share, latency and score shares a bucket."""

    version: str
    per_second: float
    error_share: float = 0.001
    latency: tuple[float, ...] = HEALTHY_LATENCY
    scores: tuple[float, ...] = HEALTHY_SCORES


STABLE = Traffic("1", per_second=20)
SCENARIOS = {
    "good": (STABLE, Traffic("2", per_second=2)),
    "errors": (STABLE, Traffic("2", per_second=2, error_share=0.05)),
    "shifted": (STABLE, Traffic("2", per_second=2, scores=tuple(reversed(HEALTHY_SCORES)))),
    "slow": (STABLE, Traffic("2", per_second=2, latency=(0, 0, 0, 0.1, 0.2, 0.4, 0.2, 0.1))),
    "few": (STABLE, Traffic("2", per_second=0.25)),
}


def _series(job: str, role: str, traffic: Traffic, step: int) -> dict[str, list[str]]:
    """Each family's sample lines for one role at one scrape: cumulative since the start."""
    requests = traffic.per_second * STEP_S * step
    base = f'job="{job}",role="{role}",model_version="{traffic.version}",route="/predict"'
    errors = round(requests * traffic.error_share)
    lines: dict[str, list[str]] = {"http_requests": [], "http_request_duration_seconds": []}
    for status, count in (("200", round(requests) - errors), ("500", errors)):
        lines["http_requests"].append(
            _line("http_requests_total", f'{base},status="{status}"', count)
        )
        cumulative = 0.0
        for bound, share in zip((*LATENCY_BOUNDS, math.inf), (*traffic.latency, 0), strict=True):
            cumulative += share * count
            le = "+Inf" if bound == math.inf else str(bound)
            value = round(cumulative) if bound != math.inf else count
            lines["http_request_duration_seconds"].append(
                _line(
                    "http_request_duration_seconds_bucket",
                    f'{base},status="{status}",le="{le}"',
                    value,
                )
            )
    scored = round(requests) - errors
    labels = f'job="{job}",role="{role}",model_version="{traffic.version}"'
    cumulative = 0.0
    lines["prediction_score"] = []
    for bound, share in zip((*SCORE_BOUNDS, math.inf), (*traffic.scores, 0), strict=True):
        cumulative += share * scored
        le = "+Inf" if bound == math.inf else str(bound)
        value = round(cumulative) if bound != math.inf else scored
        lines["prediction_score"].append(
            _line("prediction_score_bucket", f'{labels},le="{le}"', value)
        )
    return lines


def _line(name: str, labels: str, value: float) -> str:
    # Joined, not an f-string: this file is also a Jinja template, where two braces open a tag.
    return name + "{" + labels + "} " + str(value)


def write_openmetrics(path: Path, end: int) -> None:
    families: dict[str, list[str]] = {}
    for step in range(1, STEPS + 1):
        stamp = end - (STEPS - step) * STEP_S
        for job, (stable, canary) in SCENARIOS.items():
            for role, traffic in (("stable", stable), ("canary", canary)):
                for family, lines in _series(job, role, traffic, step).items():
                    families.setdefault(family, []).extend(f"{line} {stamp}" for line in lines)
    kinds = {"http_requests": "counter", "prediction_score": "histogram"}
    text = [
        line
        for family, lines in families.items()
        for line in (f"# TYPE {family} {kinds.get(family, 'histogram')}", *lines)
    ]
    path.write_text("\n".join([*text, "# EOF", ""]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """(URL, the data's last timestamp) of a Prometheus serving the scenarios."""
    folder = tmp_path_factory.mktemp("prometheus")
    end = int(time.time()) // STEP_S * STEP_S
    write_openmetrics(folder / "series.om", end)
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "series.om", "data"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    (folder / "prometheus.yml").write_text("global: {}\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with (folder / "prometheus.log").open("wb") as log:
        server = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1, verify=LOOPBACK_TLS).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start:\n{(folder / 'prometheus.log').read_text()}")
            time.sleep(0.1)
        yield url, end
    finally:
        server.kill()  # its data is scratch: a clean shutdown would cost 1.5 s
        server.wait(10)


def verdict(url: str, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["canary-verdict", "--prometheus", url, *options])
    return result.exit_code, result.output


def scenario(prometheus: tuple[str, int], job: str) -> tuple[int, str]:
    url, end = prometheus
    return verdict(url, "--job", job, "--at", str(end), "--window", "10m")


def test_a_good_canary_is_promoted(prometheus: tuple[str, int]) -> None:
    code, output = scenario(prometheus, "good")
    assert code == Outcome.PROMOTE, output
    assert output.rstrip().endswith("verdict: promote")
    table = {line[:18].strip(): line[18:].split() for line in output.splitlines()}
    assert table["model version"] == ["1", "2"]
    assert table["requests"] == ["12,000", "1,200"]
    assert table["error rate (5xx)"] == ["0.10%", "0.08%"]
    assert table["prediction PSI"] == ["0.000"]


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        ("errors", "error rate 5.00% against 0.10% (+4.90%, at most +1.00%)"),
        ("shifted", "prediction PSI 2.418 against the stable model's scores (at most 0.2)"),
        ("slow", "p99 latency 235.0 ms against 50.0 ms (x4.70, at most x1.5)"),
    ],
)
def test_a_worse_canary_is_rolled_back(prometheus: tuple[str, int], job: str, reason: str) -> None:
    code, output = scenario(prometheus, job)
    assert code == Outcome.ROLLBACK, output
    last = output.rstrip().splitlines()[-1]
    assert last.startswith("verdict: rollback (")
    assert reason in last


def test_too_few_requests_decide_nothing(prometheus: tuple[str, int]) -> None:
    code, output = scenario(prometheus, "few")
    assert code == Outcome.NO_DECISION, output
    assert "not enough requests in the last 10m: canary 150; 500 needed on each side" in output


def test_too_few_requests_are_asked_again_up_to_the_attempts(prometheus: tuple[str, int]) -> None:
    # What CD runs (ATTEMPTS=6 WAIT=300), without the wait.
    url, end = prometheus
    window = ("--at", str(end), "--window", "10m", "--attempts", "3")
    code, output = verdict(url, "--job", "few", *window)
    assert code == Outcome.NO_DECISION, output
    assert output.count("no decision yet (attempt ") == 2
    assert "no decision yet (attempt 2 of 3): not enough requests in the last 10m" in output
    code, output = verdict(url, "--job", "good", *window)
    assert code == Outcome.PROMOTE, output
    assert "no decision yet" not in output


def test_nothing_in_the_window_decides_nothing(prometheus: tuple[str, int]) -> None:
    url, end = prometheus
    code, output = verdict(url, "--job", "good", "--at", str(end + 3600))
    assert code == Outcome.NO_DECISION, output
    assert "stable 0, canary 0" in output


def test_an_unreachable_prometheus_is_an_error() -> None:
    code, output = verdict(f"http://127.0.0.1:{_free_port()}")
    assert code == 1
    assert "error: cannot reach Prometheus at http://127.0.0.1:" in output
    code, output = verdict("127.0.0.1:9090")
    assert code == 1
    assert "error: --prometheus '127.0.0.1:9090': not an http(s) URL" in output


def test_an_answer_that_is_not_prometheus_is_an_error() -> None:
    class NotPrometheus(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>a login page</html>")

        def log_message(self, *_: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), NotPrometheus) as server:
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        code, output = verdict(f"http://127.0.0.1:{server.server_address[1]}")
        server.shutdown()
    assert code == 1
    assert "did not answer" in output
    assert "like Prometheus's query API" in output


def test_a_bad_time_or_window_is_named(prometheus: tuple[str, int]) -> None:
    url, _ = prometheus
    code, output = verdict(url, "--at", "yesterday")
    assert code == 1
    assert "answered HTTP 400" in output
    assert "yesterday" in output
    code, output = verdict(url, "--window", "ten minutes")
    assert code == 1
    assert "error: --window 'ten minutes': not a Prometheus duration such as 10m" in output


def test_psi_of_histograms() -> None:
    same = {0.5: 50.0, 1.0: 100.0, math.inf: 100.0}
    assert population_stability(same, {0.5: 5.0, 1.0: 10.0, math.inf: 10.0}) == 0
    assert population_stability(same, {0.5: 0.0, 1.0: 10.0, math.inf: 10.0}) > 2
    assert math.isnan(population_stability(same, {}))


def test_the_thresholds_are_the_project_params() -> None:
    assert CanaryParams.model_validate(project_params()["delivery"]["canary"]) == CanaryParams()
