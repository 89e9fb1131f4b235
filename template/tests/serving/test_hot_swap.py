"""Swapping in a new champion under load drops nothing; the shadow model only logs."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .conftest import ADMIN_TOKEN, RunningServer, wait_for_log_record
from .test_app import RECORD


def _point_symlink(link: Path, target: Path) -> None:
    """Flip the deployed folder atomically, as a deploy step would."""
    staging = link.with_name(link.name + ".new")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target)
    staging.replace(link)


def test_reload_needs_the_admin_token(swap_server: RunningServer) -> None:
    server = swap_server
    with server.client() as http:
        assert http.post("/admin/reload").status_code == 401
        bad = http.post("/admin/reload", headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401


def test_hot_swap_under_load_drops_nothing(swap_server: RunningServer, export_v2: Path) -> None:
    server = swap_server
    workdir = server.workdir
    statuses: list[int] = []
    # One list per client: each sends its requests one after another, so its own answers are
    # in order (answers of different clients may complete in any order).
    versions: list[list[str]] = [[], []]
    stop = threading.Event()

    def hammer(seen: list[str]) -> None:
        with server.client() as http:
            while not stop.is_set():
                response = http.post("/predict", json=[RECORD] * 10)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    seen.append(response.json()["model_version"])

    def wait_until(seen: Callable[[], bool]) -> None:
        # Progress, not time: a busy machine may take seconds to answer the first requests.
        deadline = time.monotonic() + 30
        while not seen() and time.monotonic() < deadline:
            time.sleep(0.05)

    threads = [threading.Thread(target=hammer, args=(seen,)) for seen in versions]
    for thread in threads:
        thread.start()
    wait_until(lambda: min(len(seen) for seen in versions) >= 2)
    _point_symlink(workdir / "current", export_v2)
    with server.client() as http:
        reload = http.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    wait_until(lambda: all(seen[-1] == "2" for seen in versions))
    stop.set()
    for thread in threads:
        thread.join()

    assert reload.status_code == 200, reload.text
    assert reload.json() == {"previous_version": "1", "model_version": "2", "canary_version": None}
    assert set(statuses) == {200}
    for seen in versions:
        assert seen[0] == "1"
        assert seen[-1] == "2"
        # Once a client saw the new model, it never saw the old one again.
        assert "1" not in seen[seen.index("2") :]
    with server.client() as http:
        assert http.get("/model").json()["version"] == "2"
        assert 'model_reloads_total{outcome="swapped"} 1.0' in http.get("/metrics").text


def test_shadow_answers_are_logged_not_returned(swap_server: RunningServer) -> None:
    server = swap_server
    workdir = server.workdir
    with server.client() as http:
        response = http.post("/predict", json=RECORD)
    request_id = response.json()["request_id"]
    assert "shadow" not in response.json()
    record = wait_for_log_record(workdir / "predictions" / "predictions.jsonl", request_id)
    assert record["shadow"]["model_version"] == "2"
    assert len(record["shadow"]["predictions"]) == 1


def test_reload_reports_a_broken_export_and_keeps_serving(
    swap_server: RunningServer, tmp_path: Path
) -> None:
    server = swap_server
    workdir = server.workdir
    _point_symlink(workdir / "current", tmp_path)  # an empty folder: no metadata.json
    with server.client() as http:
        refused = http.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert refused.status_code == 409
        assert "metadata.json" in refused.json()["detail"]
        assert http.post("/predict", json=RECORD).status_code == 200


def test_sighup_reloads_too(swap_server: RunningServer, export_dir: Path) -> None:
    _point_symlink(swap_server.workdir / "current", export_dir)
    with swap_server.client() as http:
        before = http.get("/model").json()["version"]
        swap_server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while http.get("/model").json()["version"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert http.get("/model").json()["version"] == "1"
        assert swap_server.process.poll() is None
