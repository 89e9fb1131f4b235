"""Metrics add up over workers: uvicorn --workers 2 with PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import re

import httpx

from .conftest import OTHER_KINDS, RunningServer
from .test_app import RECORD

REQUESTS = 20
_ANSWERED = re.compile(r'http_requests_total\{method="POST",route="/predict",status="200"\} (\S+)')


def _scrape(server: RunningServer) -> str:
    # A new connection each time: whichever worker accepts it answers.
    return httpx.get(f"{server.url}/metrics", timeout=10).text


def _answered(text: str) -> float:
    match = _ANSWERED.search(text)
    return float(match.group(1)) if match else 0.0


def test_every_worker_is_counted(kind_servers: dict[str, RunningServer]) -> None:
    server = kind_servers[OTHER_KINDS[0]]  # started with two workers
    before = _answered(_scrape(server))
    for _ in range(REQUESTS):
        response = httpx.post(f"{server.url}/predict", json=RECORD, timeout=10)
        assert response.status_code == 200
    scrapes = [_scrape(server) for _ in range(4)]
    assert [_answered(text) - before for text in scrapes] == [REQUESTS] * 4
    assert all("model_info{" in text for text in scrapes)
