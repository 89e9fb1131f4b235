"""Projects that one session builds once and its tests share, across the xdist workers.

A generated project that ran its pipeline costs minutes of CPU, so each one is built by
whichever test needs it first, in a folder every worker sees, and its state at that moment is
recorded in a JSON file beside it; later tests read that record instead of building again.
A file lock per project lets one builder at a time in, and lets a test that changes the project
hold it alone. xdist_group marks would not do: with pytest 9 and pytest-xdist 3.8,
`--dist loadgroup` ignores them (checked).

The default project is built by `make demo`, the README's command, and serves the end-to-end
tests, the binary pipeline tests and the matrix row of the default answers.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import bytecode
from blueprint import ENV, ROOT

# The embedded store unless a test names a server; the suite's own environment never leaks in.
PROJECT_ENV = {
    **{k: v for k, v in ENV.items() if not k.startswith("MLFLOW_")},
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "OMP_NUM_THREADS": "1",
}
DEMO = "demo"
# What the generated README tells a team to commit after `make all` and after a retrain.
OUTPUTS = ("*.dvc", "*.gitignore", "dvc.lock", "reports")
# What a caller sends to the default project's service: the contract's features.
FEATURES = ("age", "annual_income", "loan_amount", "employment_type", "owns_home")


def sh(
    command: list[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run in a project's environment: blueprint.run's contract without MLFLOW_* leaking in."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**PROJECT_ENV, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    bytecode.after(command, cwd)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed in {cwd} ({done.returncode})\n"
            f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"
        )
    return done


def without_uv() -> dict[str, str]:
    """PATH with no uv on it: a team's shell where `make install` bootstrapped its own."""
    path = PROJECT_ENV["PATH"].split(os.pathsep)
    return {"PATH": os.pathsep.join(d for d in path if not (Path(d) / "uv").exists())}


def commit_outputs(project: Path, message: str) -> subprocess.CompletedProcess[str]:
    """`git add` what the pipeline made and `git commit` it, the hooks on, as the README says."""
    sh(["git", "add", "--", *OUTPUTS], project)
    return sh(["git", "commit", "--quiet", "-m", message], project, env=without_uv(), check=False)


def timed(
    command: list[str], cwd: Path, *, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = sh(command, cwd, env=env)
    return done, time.monotonic() - start


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, body: Any = None) -> tuple[int, Any]:
    """GET (or POST `body` as JSON) on loopback: the status and the parsed answer."""
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


@contextmanager
def serving(project: Path) -> Iterator[str]:
    """`make serve` on a free loopback port for the block: its URL; it must stop cleanly."""
    port = free_port()
    log_path = project / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["make", "serve", f"PORT={port}", f"METRICS_DIR=logs/metrics-{port}"],
            cwd=project,
            env=PROJECT_ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and uvicorn get the signal together
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not _answers(f"{url}/ready"):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"make serve did not get ready:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)
    served = log_path.read_text()
    assert "Application shutdown complete" in served, served
    assert "Traceback" not in served, served


def _answers(url: str) -> bool:
    try:
        return call(url)[0] == 200
    except OSError:
        return False


def registry_state(project: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Versions and aliases (as strings) of the project's model, read by its own MLflow client
    behind a tracking server (`env`), or from the embedded store's tables: the same rows, read
    in milliseconds rather than an MLflow start-up (a dozen tests read it twice)."""
    name = yaml.safe_load((project / "params.yaml").read_text())["registry"]["model_name"]
    if env is None:
        return _embedded_registry_state(project / "mlflow.db", name)
    code = """
import json, os, sys
from mlflow import MlflowClient
uri = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
model = client.get_registered_model(sys.argv[1])
versions = client.search_model_versions(f"name='{sys.argv[1]}'")
print(json.dumps({
    "aliases": {alias: str(version) for alias, version in model.aliases.items()},
    "versions": sorted(int(v.version) for v in versions),
    "tags": {str(v.version): dict(v.tags) for v in versions},
}))
"""
    done = sh([str(project / ".venv" / "bin" / "python"), "-c", code, name], project, env=env)
    state: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return state


def _embedded_registry_state(database: Path, name: str) -> dict[str, Any]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as store:
        aliases = store.execute(
            "SELECT alias, version FROM registered_model_aliases WHERE name = ?", (name,)
        ).fetchall()
        versions = store.execute("SELECT version FROM model_versions WHERE name = ?", (name,))
        tags = store.execute(
            "SELECT version, key, value FROM model_version_tags WHERE name = ?", (name,)
        ).fetchall()
        numbers = sorted(int(version) for (version,) in versions.fetchall())
    if not numbers:
        raise AssertionError(f"{database}: no registered model {name!r}")
    by_version: dict[str, dict[str, str]] = {str(number): {} for number in numbers}
    for version, key, value in tags:
        by_version[str(version)][key] = value
    return {
        "aliases": {alias: str(version) for alias, version in aliases},
        "versions": numbers,
        "tags": by_version,
    }


def pipeline_record(project: Path) -> dict[str, Any]:
    """What a pipeline run left, read before any later test changes the project."""
    reports = project / "reports"
    return {
        "project": str(project),
        "decision": read_json(reports / "decision.json"),
        "metrics": read_json(reports / "metrics.json"),
        "validation": read_json(reports / "validation.json"),
        "card": (reports / "model_card.md").read_text(),
        "reports": sorted(p.relative_to(reports).as_posix() for p in reports.rglob("*.*")),
        "registry": registry_state(project),
        "champion": read_json(project / "models" / "champion" / "metadata.json"),
    }


def session_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this session's that every xdist worker sees."""
    # Under xdist each worker's base temp sits in the session's folder; without it, the base
    # temp is the session's folder (its parent is shared by every session).
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def locked(shared: Path, name: str) -> Iterator[None]:
    with (shared / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def built_once(shared: Path, name: str, build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """The record of the project `name`, built on first use (call with its lock held).

    A build that failed fails every later test that needs it at once, with the first error.
    """
    state, failure = shared / f"{name}.json", shared / f"{name}.failed"
    if failure.exists():
        pytest.fail(f"the {name} project failed to build earlier:\n{failure.read_text()}")
    if not state.exists():
        folder = shared / name
        folder.mkdir()
        try:
            record = build(folder)
        except Exception as exc:
            failure.write_text(f"{type(exc).__name__}: {str(exc)[-6000:]}")
            raise
        state.write_text(json.dumps(record))
    record = read_json(state)
    assert isinstance(record, dict)
    return record


# --- the default project, as `make demo` leaves it ------------------------------------------


@dataclass
class Demo:
    """The project `make demo` made, with what was true of it when the demo finished.

    Later tests change the project (a rejected model, bad inputs, a commit), so the demo's own
    assertions read this record, not the folder.
    """

    project: Path
    seconds: float
    decision: dict[str, Any]
    champion: dict[str, Any]
    changed: list[str]
    committed: str  # what the commit hook refused in the pipeline's outputs; empty: nothing
    records: list[dict[str, Any]]


def _feature(name: str, text: str) -> Any:
    """A CSV cell as a caller would send it in JSON."""
    if text == "":
        return None
    if name == "owns_home":
        return text == "True"
    if name == "employment_type":
        return text
    return int(text) if name == "age" else float(text)


def build_demo(folder: Path) -> dict[str, Any]:
    """`make demo` up to the champion (install, lint, test, data, pipeline, push, export), then
    its outputs committed as the README says (the hooks on, no uv on PATH) and every hook run
    over every file. The demo's second half, `make loop-demo`, is a test of its own on this
    project (test_loop.py): a dozen tests wait for the champion, none for the loop."""
    project = folder / "demo"
    start = time.monotonic()
    # Its suite as a user's `make test` runs it, on every core (the suite's others take one).
    sh(["make", "demo", f"DEMO_DIR={project}", "DEMO_STEPS=all", "TEST_WORKERS=auto"], ROOT)
    seconds = time.monotonic() - start
    print(f"make demo took {seconds:.0f} s")
    bytecode.share(project)
    changed = sh(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    committed = commit_outputs(project, "The data and the first champion's reports")
    # The hooks a commit runs: the rows of the option matrix run them once per distinct code.
    sh([str(project / ".venv" / "bin" / "pre-commit"), "run", "--all-files"], project)
    with (project / "data" / "raw" / "credit.csv").open() as table:
        rows = [row for row, _ in zip(csv.DictReader(table), range(5), strict=False)]
    return {
        **pipeline_record(project),
        "seconds": seconds,
        "changed": sorted(line[3:] for line in changed.splitlines()),
        "committed": committed.stdout + committed.stderr if committed.returncode else "",
        "records": [{name: _feature(name, row[name]) for name in FEATURES} for row in rows],
    }


def demo_from(record: Mapping[str, Any]) -> Demo:
    fields = ("seconds", "decision", "champion", "changed", "committed", "records")
    return Demo(Path(record["project"]), **{name: record[name] for name in fields})
