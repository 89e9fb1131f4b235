"""The README's main command: `make demo` generates the default project and runs it.

Then the generated service is started the way its README says (`make serve`) and called over
loopback, and the image's entrypoint is proved from a serve-only environment.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blueprint import ENV, ROOT, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demo = tmp_path_factory.mktemp("demo") / "demo"
    run(["make", "demo", f"DEMO_DIR={demo}"], ROOT)
    return demo


def test_make_demo_reaches_a_registered_champion(demo: Path) -> None:
    assert (demo / ".venv" / "bin" / "python").is_file(), "no fresh environment was made"
    decision = json.loads((demo / "reports" / "decision.json").read_text())
    assert decision["outcome"] == "promoted"
    assert decision["version"] == "1"
    metadata = json.loads((demo / "models" / "champion" / "metadata.json").read_text())
    assert metadata["version"] == "1"
    assert len(metadata["git_commit"]) == 40
    # What the run leaves for the user to commit; stores, caches and exports stay ignored.
    changed = run(["git", "status", "--porcelain", "--untracked-files=all"], demo).stdout
    paths = sorted(line[3:] for line in changed.splitlines())
    assert "dvc.lock" in paths
    assert "data/raw/credit.csv.dvc" in paths
    assert "reports/audit.jsonl" in paths
    ignored = ("mlflow.db", "mlruns/", "models/", ".venv/", "data/raw/credit.csv", "logs/")
    assert not [p for p in paths if p.startswith(ignored) and not p.endswith(".dvc")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as error:
        text, status = error.read().decode(), error.code
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


@pytest.fixture(scope="module")
def service(demo: Path) -> Iterator[str]:
    port = _free_port()
    log = (demo / "serve.log").open("wb")
    process = subprocess.Popen(
        ["make", "serve", f"PORT={port}"],
        cwd=demo,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make and uvicorn get the signal together
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if _call(f"{url}/ready")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"make serve did not get ready:\n{(demo / 'serve.log').read_text()}")
        time.sleep(0.2)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(20)  # make itself dies of the signal; what matters is how uvicorn stopped
    log.close()
    served = (demo / "serve.log").read_text()
    assert "Application shutdown complete" in served, served
    assert "Traceback" not in served, served


def _sample_records(demo: Path, count: int) -> list[dict[str, Any]]:
    """Rows of the project's own data, as a caller would send them: features only."""
    features = ("age", "annual_income", "loan_amount", "employment_type", "owns_home")
    with (demo / "data" / "raw" / "credit.csv").open() as table:
        rows = [row for row, _ in zip(csv.DictReader(table), range(count), strict=False)]

    def value(name: str, text: str) -> Any:
        if text == "":
            return None
        if name == "owns_home":
            return text == "True"
        if name == "employment_type":
            return text
        return int(text) if name == "age" else float(text)

    return [{name: value(name, row[name]) for name in features} for row in rows]


def test_the_service_scores_the_champion(demo: Path, service: str) -> None:
    records = _sample_records(demo, 5)
    status, one = _call(f"{service}/predict", records[0])
    assert status == 200, one
    assert one["model_version"] == "1"
    assert len(one["predictions"]) == 1
    assert len(one["probabilities"][0]) == len(one["classes"]) == 2

    status, batch = _call(f"{service}/predict", records)
    assert status == 200, batch
    assert len(batch["predictions"]) == 5

    status, card = _call(f"{service}/model")
    assert status == 200
    assert card["version"] == "1"
    assert card["alias"] == "champion"
    assert "roc_auc" in card["metrics"]

    # The documented example request is a real record of the training data, and it scores.
    status, document = _call(f"{service}/openapi.json")
    schema = document["components"]["schemas"]["PredictionRecord"]
    assert schema["examples"] == [card["example"]]
    assert _call(f"{service}/predict", card["example"])[0] == 200

    status, metrics = _call(f"{service}/metrics")
    assert status == 200
    assert 'route="/predict"' in metrics


def test_the_service_refuses_bad_input_by_field(demo: Path, service: str) -> None:
    record = _sample_records(demo, 1)[0]
    cases = {
        "age": {**record, "age": "old"},
        "employment_type": {**record, "employment_type": "astronaut"},
        "loan_amount": {**record, "loan_amount": -1},
    }
    for field, body in cases.items():
        status, answer = _call(f"{service}/predict", body)
        assert status == 422, (field, answer)
        assert field in json.dumps(answer["detail"]), (field, answer)
        assert "Traceback" not in json.dumps(answer)


def test_the_image_entrypoint_runs_from_the_serving_dependencies_alone(demo: Path) -> None:
    done = run(["make", "check-image"], demo)
    assert "serve-only env answered /predict" in done.stdout, done.stdout
    assert "(clean)" in done.stdout
