"""The README's main command: `make demo` generates the default project and runs it.

Then the generated service is started the way its README says (`make serve`) and called over
loopback: by hand, through a client generated from its own OpenAPI document, and through its
/docs page in a browser with no internet. The image's entrypoint is proved from a serve-only
environment. The project is the session's shared default project (projects.py); these tests
only read it, so they take its lock only to start the service.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import shutil
import signal
import subprocess
import sys
import time
import typing
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

from blueprint import BIN, ENV, run
from browser import visit
from projects import DEMO, Demo, call, free_port, locked, sh, without_uv
from system import skip_without

pytestmark = pytest.mark.slow

CLIENT = "prediction_client"


def test_make_demo_reaches_a_registered_champion(demo: Demo) -> None:
    assert (demo.project / ".venv" / "bin" / "python").is_file(), "no fresh environment was made"
    assert demo.decision["outcome"] == "promoted"
    assert demo.decision["version"] == "1"
    assert demo.champion["version"] == "1"
    assert len(demo.champion["git_commit"]) == 40
    assert demo.champion["scorer"] == "treelite"  # the production scoring path
    # What the run leaves for the user to commit; stores, caches and exports stay ignored.
    paths = demo.changed
    assert "dvc.lock" in paths
    assert "data/raw/credit.csv.dvc" in paths
    assert "reports/audit.jsonl" in paths
    ignored = ("mlflow.db", "mlruns/", "models/", ".venv/", "data/raw/credit.csv", "logs/")
    assert not [p for p in paths if p.startswith(ignored) and not p.endswith(".dvc")]
    # treelite's checkpoint compiled to C by TL2cgen, which needs gcc.
    if shutil.which("gcc") is None:
        skip_without("gcc")
    assert demo.champion["compiled"] == "tl2cgen"


def test_the_commit_hook_takes_what_the_pipeline_made(demo: Demo) -> None:
    # The README's commit after `make all` (projects.py): the data's .dvc file, dvc.lock and
    # reports/, through every hook, with no uv on PATH. It used to be refused: DVC's MD5s and
    # the run's hashes look like keys to a secret scanner.
    assert demo.committed == "", demo.committed
    assert "reports/train.json" in demo.changed


# AWS's documented example key, where a team's file could carry one: code, and the reports
# (a line shaped like the run ids the scan lets through, but not hex).
PLANTED = {
    "planted_settings.py": 'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n',
    "reports/planted.json": '{\n  "aws_key_id": "AKIAIOSFODNN7EXAMPLE"\n}\n',
}


def test_the_commit_hook_refuses_a_planted_secret_anywhere(demo: Demo, shared: Path) -> None:
    # `make demo` ran every hook over every file (projects.py): a fresh project has no finding.
    project = demo.project
    with locked(shared, DEMO):
        head = run(["git", "rev-parse", "HEAD"], project).stdout
        for name, text in PLANTED.items():
            (project / name).write_text(text)
        try:
            run(["git", "add", "--", *PLANTED], project)
            commit = ["git", "commit", "--quiet", "-m", "Settings"]
            refused = sh(commit, project, env=without_uv(), check=False)
            after = run(["git", "rev-parse", "HEAD"], project).stdout
        finally:
            run(["git", "rm", "--quiet", "--force", "--", *PLANTED], project)
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1, said
    assert after == head, "a commit carrying a key went through"
    assert said.count("Secret Type: AWS Access Key") == 2, said
    for name, text in PLANTED.items():
        line = 1 + next(n for n, ln in enumerate(text.splitlines()) if "AKIA" in ln)
        assert f"Location:    {name}:{line}" in said, said


@dataclass(frozen=True)
class Served:
    url: str
    version: str  # the champion models/champion held when the service started


@pytest.fixture(scope="module")
def service(demo: Demo, shared: Path) -> Iterator[Served]:
    port = free_port()
    log_path = demo.project / f"serve-{port}.log"
    log = log_path.open("wb")
    # The service reads params.yaml as it starts; the bad-input tests break it for a moment.
    with locked(shared, DEMO):
        process = subprocess.Popen(
            # Each xdist worker serves the shared project; `make serve` empties its metrics
            # folder as it starts, so each service gets a folder of its own.
            ["make", "serve", f"PORT={port}", f"METRICS_DIR=logs/metrics-{port}"],
            cwd=demo.project,
            env=ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and uvicorn get the signal together
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(f"{url}/ready")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make serve did not get ready:\n{log_path.read_text()}")
            time.sleep(0.2)
        # The loop demo (test_loop.py) may have promoted a newer champion than the demo's.
        champion = json.loads((demo.project / "models/champion/metadata.json").read_text())
    yield Served(url, str(champion["version"]))
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(20)  # make itself dies of the signal; what matters is how uvicorn stopped
    log.close()
    served = log_path.read_text()
    assert "Application shutdown complete" in served, served
    assert "Traceback" not in served, served


def test_the_service_scores_the_champion(demo: Demo, service: Served) -> None:
    records = demo.records
    status, one = call(f"{service.url}/predict", records[0])
    assert status == 200, one
    assert one["model_version"] == service.version
    assert len(one["predictions"]) == 1
    assert len(one["probabilities"][0]) == len(one["classes"]) == 2

    status, batch = call(f"{service.url}/predict", records)
    assert status == 200, batch
    assert len(batch["predictions"]) == 5

    status, card = call(f"{service.url}/model")
    assert status == 200
    assert card["version"] == service.version
    assert card["alias"] == "champion"
    assert "roc_auc" in card["metrics"]

    # The documented example request is a real record of the training data, and it scores.
    status, document = call(f"{service.url}/openapi.json")
    schema = document["components"]["schemas"]["PredictionRecord"]
    assert schema["examples"] == [card["example"]]
    assert call(f"{service.url}/predict", card["example"])[0] == 200

    status, metrics = call(f"{service.url}/metrics")
    assert status == 200
    assert 'route="/predict"' in metrics


def test_the_service_refuses_bad_input_by_field(demo: Demo, service: Served) -> None:
    record = demo.records[0]
    cases = {
        "age": {**record, "age": "old"},
        "employment_type": {**record, "employment_type": "astronaut"},
        "loan_amount": {**record, "loan_amount": -1},
    }
    for field, body in cases.items():
        status, answer = call(f"{service.url}/predict", body)
        assert status == 422, (field, answer)
        assert field in json.dumps(answer["detail"]), (field, answer)
        assert "Traceback" not in json.dumps(answer)


def test_the_image_entrypoint_runs_from_the_serving_dependencies_alone(demo: Demo) -> None:
    # Reads only what export-model writes (models/champion) and the locked dependencies, which
    # no other test changes, so it runs without the project's lock.
    done = run(["make", "check-image"], demo.project)
    assert "serve-only env answered /predict" in done.stdout, done.stdout
    assert "(clean)" in done.stdout


# --- a client generated from the service's own OpenAPI document -----------------------------


def _operation(package: str, method: str, path: str) -> ModuleType:
    """The generated module that calls `method path` (its name follows the operation id)."""
    api = importlib.import_module(f"{package}.api")
    wanted = re.compile(rf'"method": "{method}",\s*"url": "{re.escape(path)}"')
    for found in pkgutil.walk_packages(api.__path__, f"{api.__name__}."):
        module = importlib.import_module(found.name)
        source = Path(module.__file__ or "").read_text()
        if wanted.search(source):
            return module
    raise AssertionError(f"the generated client has no operation for {method.upper()} {path}")


def _body(operation: ModuleType, payload: Any) -> Any:
    """The payload as the client's own body type: a model, or a list of models."""
    annotation = typing.get_type_hints(operation.sync_detailed)["body"]
    for option in typing.get_args(annotation) or (annotation,):
        if isinstance(payload, list) and typing.get_origin(option) is list:
            (item,) = typing.get_args(option)
            return [item.from_dict(record) for record in payload]
        if isinstance(payload, dict) and attrs.has(option):
            model: Any = option
            columnar = "columns" in {field.name for field in attrs.fields(model)}
            if columnar == ("columns" in payload):
                return model.from_dict(payload)
    raise AssertionError(f"the client's /predict body ({annotation}) cannot say {payload!r}")


@pytest.fixture
def client_package(
    service: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """openapi-python-client's package for the live service's /openapi.json, imported."""
    status, document = call(f"{service.url}/openapi.json")
    assert status == 200
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    config = tmp_path / "client.yml"
    config.write_text(f"package_name_override: {CLIENT}\nproject_name_override: {CLIENT}\n")
    generated = run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(tmp_path / CLIENT),
        ],
        tmp_path,
    )
    print(generated.stdout + generated.stderr)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(CLIENT)
    for name in [n for n in sys.modules if n == CLIENT or n.startswith(f"{CLIENT}.")]:
        del sys.modules[name]


def test_a_generated_client_calls_the_service(
    demo: Demo, service: Served, client_package: ModuleType
) -> None:
    client = client_package.Client(base_url=service.url, raise_on_unexpected_status=True)
    predict = _operation(CLIENT, "post", "/predict")
    records = demo.records
    columns = {name: [record[name] for record in records] for name in records[0]}
    for payload, rows in ((records[0], 1), (records, len(records)), ({"columns": columns}, 5)):
        response = predict.sync_detailed(client=client, body=_body(predict, payload))
        assert response.status_code == 200, response.content
        assert response.parsed is not None, f"the document gives no schema for {response.content!r}"
        assert len(response.parsed.predictions) == rows
        assert response.parsed.model_version == service.version

    card = _operation(CLIENT, "get", "/model").sync_detailed(client=client)
    assert card.status_code == 200, card.content
    assert card.parsed is not None, f"the document gives no schema for {card.content!r}"
    assert card.parsed.to_dict()["version"] == service.version


# --- /docs in a browser, offline --------------------------------------------------------------

# Swagger UI renders after the page has loaded: wait (in the page) for its operations.
DOCS_RENDERED = """new Promise(done => {
  const started = Date.now();
  (function look() {
    const operations = document.querySelectorAll('.opblock');
    if (operations.length >= 3 || Date.now() - started > 15000) {
      done([operations.length,
            [...document.querySelectorAll('[data-path]')].map(e => e.dataset.path),
            document.body.innerText]);
    } else { setTimeout(look, 100); }
  })();
})"""


def test_the_docs_page_renders_offline_in_a_browser(service: Served, tmp_path: Path) -> None:
    host = urllib.parse.urlsplit(service.url).netloc
    status, page = call(f"{service.url}/docs")
    assert status == 200
    # Everything the page loads comes from the service itself: no CDN.
    off_host = [
        url
        for url in re.findall(r"""https?://[^\s"'<>)]+""", page)
        if urllib.parse.urlsplit(url).netloc != host
    ]
    assert off_host == [], page

    seen = visit(f"{service.url}/docs", DOCS_RENDERED, tmp_path / "profile")
    assert seen.failed == [], seen.failed
    assert [url for url in seen.requested if urllib.parse.urlsplit(url).netloc != host] == []
    operations, paths, text = seen.value
    assert "Failed to load API definition" not in text
    assert operations >= 3, f"Swagger UI rendered no operations:\n{text[-3000:]}"
    assert "/predict" in paths
