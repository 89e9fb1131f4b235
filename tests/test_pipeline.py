"""Run the generated pipeline for real: data -> validate -> split -> train -> evaluate ->
register, with the embedded MLflow store, a tracking server, and a PostgreSQL-backed server.

Every project here keeps the default parameters, so what is tested is what `make all` does
for a user. A project costs minutes of CPU, so each task kind's project is built once per
session and shared (projects.py): the binary one is the project `make demo` made for the
end-to-end tests, the other kinds are built the same way by whichever test needs them first.
A test holds the project's lock while it uses it (the rejection and bad-input tests change it).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprint import BIN, copier_copy
from object_store import S3, s3_server
from projects import (
    DEMO,
    PROJECT_ENV,
    build_demo,
    built_once,
    locked,
    pipeline_record,
    read_json,
    registry_state,
    sh,
    timed,
)
from system import skip_without

TASKS = ["binary_classification", "multiclass_classification", "regression"]
KIND = {"binary_classification": "binary", "multiclass_classification": "multiclass"}
METRICS = {
    "binary": {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy"},
    "multiclass": {
        "f1_macro",
        "precision_macro",
        "recall_macro",
        "roc_auc_ovr",
        "accuracy",
        "log_loss",
    },
    "regression": {"rmse", "mae", "r2"},
}
# Each task kind's promotion.<kind>.primary_metric in params.yaml: the global explanation's.
PRIMARY = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}
PLOTS = {
    "binary": {"confusion", "roc", "precision_recall", "calibration"},
    "multiclass": {"confusion"},
    "regression": {"predicted_vs_actual", "residuals"},
}
RAW = Path("data/raw/credit.csv")
# As `make pipeline` runs it: the stages call the CLI, which `uv run` puts on PATH.
DVC = [str(BIN / "uv"), "run", "--no-sync", "dvc"]
POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
# The binary project is the default one: `make demo` makes it (install, lint, test, data,
# pipeline, push, export), which is the other kinds' build and more.
DEFAULT_TASK = "binary_classification"


def kind_of(task: str) -> str:
    return KIND.get(task, task)


def generate(template: Path, dst: Path, task: str, **answers: str) -> Path:
    """The default project for a task kind, installed, with its raw data made and tracked."""
    project = dst / "credit-risk"
    copier_copy(template, project, {"ml_task": task, **answers})
    sh(["make", "install"], project)
    sh(["make", "data"], project)
    return project


@dataclass
class Pipeline:
    """A project that ran `make install data pipeline push export-model`, as it was then."""

    task: str
    project: Path
    seconds: float
    decision: dict[str, Any]
    metrics: dict[str, float]
    validation: dict[str, Any]
    card: str
    reports: list[str]
    registry: dict[str, Any]
    champion: dict[str, Any]  # its exported metadata.json

    @property
    def kind(self) -> str:
        return kind_of(self.task)


def build_pipeline(template: Path, task: str) -> Callable[[Path], dict[str, Any]]:
    def build(folder: Path) -> dict[str, Any]:
        project = generate(template, folder, task)
        _, seconds = timed(["make", "pipeline", "push", "export-model"], project)
        print(f"{task}: make pipeline push export-model took {seconds:.0f} s")
        return {**pipeline_record(project), "seconds": seconds}

    return build


@pytest.fixture
def pipelines(template: Path, shared: Path) -> Iterator[Callable[[str], Pipeline]]:
    """`pipelines(task)`: the task's built project, locked for this test alone."""
    with ExitStack() as held:

        def get(task: str) -> Pipeline:
            name = DEMO if task == DEFAULT_TASK else task
            held.enter_context(locked(shared, name))
            build = build_demo if task == DEFAULT_TASK else build_pipeline(template, task)
            record = built_once(shared, name, build)
            fields = (
                *("seconds", "decision", "metrics", "validation", "card", "reports"),
                *("registry", "champion"),
            )
            return Pipeline(task, Path(record["project"]), **{k: record[k] for k in fields})

        yield get


# --- 1. the default pipeline, for every task kind -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_default_pipeline_promotes_a_first_champion(
    task: str, pipelines: Callable[[str], Pipeline]
) -> None:
    run = pipelines(task)
    project, kind = run.project, run.kind

    assert run.decision["outcome"] == "promoted", run.decision["reasons"]
    assert run.decision["promoted"] is True
    assert run.decision["version"] == "1"
    assert "no champion to compare with" in run.decision["reasons"]
    assert run.registry["versions"] == [1]
    assert run.registry["aliases"] == {"champion": "1", "challenger": "1"}
    assert run.registry["tags"]["1"]["decision"] == "promoted"
    assert run.registry["tags"]["1"]["task"] == kind

    assert set(run.metrics) == METRICS[kind]
    assert all(isinstance(value, float) for value in run.metrics.values())
    plots = {Path(name).stem for name in run.reports if fnmatch(name, "plots/*.json")}
    assert plots == PLOTS[kind]
    reports = ("validation.json", "validation.md", "fairness.json", "explanations.json")
    for name in (*reports, "model_card.md"):
        assert name in run.reports, name
    assert run.validation["success"] is True
    assert run.card.startswith("# Model card: credit-risk v1")
    # The global explanation of this task kind's model, on its gate's metric, in the card.
    assert "## Explanations" in run.card
    assert f"| feature | {PRIMARY[kind]} worse by, shuffled |" in run.card
    assert "Status: **promoted**" in run.card

    assert run.champion["version"] == "1"
    assert run.champion["task"] == kind
    assert (project / "models" / "champion" / "model" / "MLmodel").is_file()
    assert (project / "models" / "champion" / "schema.yaml").is_file()
    storage = project.parent / "credit-risk-dvc-storage"
    assert storage.is_dir()
    assert any(path.is_file() for path in storage.rglob("*")), "dvc push stored nothing"


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_unchanged_pipeline_is_up_to_date(task: str, pipelines: Callable[[str], Pipeline]) -> None:
    project = pipelines(task).project
    done, seconds = timed([*DVC, "repro"], project)
    print(f"{task}: no-op dvc repro took {seconds:.1f} s")
    assert "Data and pipelines are up to date." in done.stdout + done.stderr
    assert "Running stage" not in done.stdout
    # A few seconds here when idle; the bound leaves room for a busy machine.
    assert seconds < 45


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_a_clone_pulls_the_raw_data_from_the_remote(
    task: str, pipelines: Callable[[str], Pipeline]
) -> None:
    project = pipelines(task).project
    tracked = ["data/raw/credit.csv.dvc", "data/raw/.gitignore", "dvc.lock", "data/.gitignore"]
    sh(["git", "add", *[name for name in tracked if (project / name).exists()]], project)
    # Through the hooks, as a team commits (the demo's project has committed them already).
    sh(["git", "commit", "--quiet", "--allow-empty", "-m", "Track the raw data"], project)

    clone = project.parent / "clone"
    sh(["git", "clone", "--quiet", str(project), str(clone)], project.parent)
    assert not (clone / RAW).exists()
    sh(["make", "install", "data"], clone)
    assert (clone / RAW).read_bytes() == (project / RAW).read_bytes()
    if task == "regression":  # once: the Makefile's fallback is the same for every task kind
        check_data_without_the_remote(project, clone)


def check_data_without_the_remote(project: Path, clone: Path) -> None:
    """`make data` where the remote is unreachable (CI without its credentials): the seeded
    sample is made again and kept only if it has the MD5 the .dvc file tracks, said in the job
    summary; another table is an error, and the sample made for the check is not left behind."""
    (clone / RAW).unlink()
    shutil.rmtree(clone / ".dvc" / "cache")
    # The remote moved away, in the clone's own config (a dvc command would cost 2 s).
    local = "['remote \"storage\"']\n    url = /nonexistent/dvc-storage\n"
    (clone / ".dvc" / "config.local").write_text(local)
    summary = clone / "summary.md"
    _, seconds = timed(["make", "data"], clone, env={"GITHUB_STEP_SUMMARY": str(summary)})
    print(f"make data without the remote: {seconds:.1f} s")
    assert (clone / RAW).read_bytes() == (project / RAW).read_bytes()
    assert f"{RAW} is the sample made again, the table {RAW}.dvc tracks" in summary.read_text()

    (clone / RAW).unlink()
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["sample"]["rows"] = 600  # not the table the .dvc file tracks
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    refused = sh(["make", "data"], clone, check=False)
    assert refused.returncode != 0
    assert f"{RAW}.dvc tracks another table than the sample" in refused.stderr
    assert not (clone / RAW).exists()


# --- 2. promotion, then rejection of a worse model ------------------------------------------


@pytest.mark.slow
def test_a_worse_model_is_rejected_and_the_champion_stays(
    pipelines: Callable[[str], Pipeline],
) -> None:
    project = pipelines("binary_classification").project
    before = registry_state(project)
    champion = before["aliases"]["champion"]
    audit = project / "reports" / "audit.jsonl"
    earlier = audit.read_text().splitlines()

    # The champion's metrics committed: the base branch a pull request is compared with.
    sh(["git", "add", "reports/metrics.json"], project)
    sh(["git", "commit", "--quiet", "--allow-empty", "-m", "Metrics"], project)

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"]["type"] = "linear"
    params["model"]["linear"]["regularization"] = 1000.0  # C = 0.001: heavily shrunk
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done, seconds = timed(["make", "pipeline"], project)
    print(f"rejection run: make pipeline took {seconds:.0f} s")
    assert "Running stage 'train'" in done.stdout

    # CI's check on that pull request (ci.yml): the real `dvc metrics diff`, the gate's rule.
    start = time.monotonic()
    compared = sh(["make", "compare-metrics"], project, check=False)
    print(f"compare-metrics took {time.monotonic() - start:.1f} s:\n{compared.stdout}")
    assert compared.returncode != 0
    assert "| **roc_auc** (gate) |" in compared.stdout
    assert "**Worse than HEAD:** `roc_auc` lost" in compared.stdout

    decision = read_json(project / "reports" / "decision.json")
    assert decision["outcome"] == "rejected", decision["reasons"]
    assert decision["champion_before"] == champion
    assert any("worse beyond tolerance" in reason for reason in decision["reasons"])
    after = registry_state(project)
    new = str(max(after["versions"]))
    assert after["aliases"] == {"champion": champion, "challenger": new}
    assert after["tags"][new]["decision"] == "rejected"
    assert (project / "reports" / "model_card.md").read_text().count("Status: **rejected**") == 1

    lines = audit.read_text().splitlines()
    print("\n".join(["audit.jsonl:", *lines]))
    # Earlier lines stay as they were (append-only); this run added its one decision.
    assert lines[: len(earlier)] == earlier
    entries = [json.loads(line) for line in lines[len(earlier) :]]
    assert [(e["event"], e["outcome"], e["version"]) for e in entries] == [
        ("promotion_decision", "rejected", new)
    ]
    assert entries[0]["reasons"]
    decisions = [json.loads(line) for line in earlier]
    promoted = [
        e["version"]
        for e in decisions
        if e["event"] == "promotion_decision" and e["outcome"] == "promoted"
    ]
    assert promoted[-1] == champion  # the champion is the last version the gate promoted


# --- 3. bad input stops the line ------------------------------------------------------------


def _rewrite(path: Path, change: Callable[[list[str], list[list[str]]], None]) -> None:
    with path.open(newline="") as stream:
        header, *rows = list(csv.reader(stream))
    change(header, rows)
    with path.open("w", newline="") as stream:
        csv.writer(stream).writerows([header, *rows])


def _drop_column(name: str) -> Callable[[Path], None]:
    def change(header: list[str], rows: list[list[str]]) -> None:
        index = header.index(name)
        for row in (header, *rows):
            del row[index]

    return lambda project: _rewrite(project / RAW, change)


def _set_value(column: str, value: str, every: int = 1) -> Callable[[Path], None]:
    def change(header: list[str], rows: list[list[str]]) -> None:
        index = header.index(column)
        for row in rows[::every]:
            row[index] = value

    return lambda project: _rewrite(project / RAW, change)


def _empty(project: Path) -> None:
    (project / RAW).write_bytes(b"")


def _missing(project: Path) -> None:
    (project / RAW).unlink()


def _broken_yaml(project: Path) -> None:
    with (project / "params.yaml").open("a") as stream:
        stream.write("data: [unclosed\n")


def _unknown_key(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["validation"]["min_row"] = 10  # a typo of min_rows
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# case -> (break the project, what the error output must say)
BAD_INPUTS: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "params-invalid-yaml": (_broken_yaml, ["params.yaml", "YAML"]),
    "params-unknown-key": (_unknown_key, ["params.yaml", "validation.min_row", "Extra inputs"]),
    "missing-column": (_drop_column("loan_amount"), ["missing", "'loan_amount'"]),
    "wrong-type": (
        _set_value("age", "forty", every=50),
        ["column 'age'", "expect_column_values_to_be_in_type_list", "forty"],
    ),
    "unknown-category": (
        _set_value("employment_type", "astronaut", every=100),
        ["column 'employment_type'", "expect_column_values_to_be_in_set", "astronaut"],
    ),
    "nan-in-target": (
        _set_value("default", "", every=100),
        ["column 'default'", "expect_column_values_to_not_be_null"],
    ),
    "empty-file": (_empty, [str(RAW), "data file is empty"]),
    "missing-file": (_missing, [str(RAW), "missing data"]),
}


# What a bad-input case may change, put back byte for byte so that DVC sees no change.
# `dvc repro` records changed raw data in its .dvc file (and caches it) before validating it.
RESTORED = (
    str(RAW),
    f"{RAW}.dvc",
    "params.yaml",
    "reports/validation.json",
    "reports/validation.md",
)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_stops_the_pipeline_and_keeps_the_champion(
    case: str, pipelines: Callable[[str], Pipeline]
) -> None:
    project = pipelines("binary_classification").project
    before = registry_state(project)
    saved = {name: (project / name).read_bytes() for name in RESTORED}
    breaks, expected = BAD_INPUTS[case]
    breaks(project)
    try:
        done = sh([*DVC, "repro"], project, check=False)
    finally:
        for name, content in saved.items():
            (project / name).write_bytes(content)
    said = done.stdout + done.stderr
    print(f"{case}: exit {done.returncode}\n{said[-1500:]}")
    assert done.returncode != 0, said
    for text in expected:
        assert text in said, f"{text!r} not in the output:\n{said}"
    assert "Running stage 'register'" not in said
    after = registry_state(project)
    assert after["aliases"]["champion"] == before["aliases"]["champion"]
    assert after["versions"] == before["versions"]


# --- 4 and 5. a tracking server, with SQLite, and with PostgreSQL and S3 --------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: server exited ({process.returncode})\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise AssertionError(f"{url}: no answer within {timeout} s\n{log.read_text()}")


@dataclass
class Server:
    url: str
    backend: str
    stored: Callable[[], list[str]]  # the names of the artifacts the server holds


@contextmanager
def start_mlflow(
    project: Path, backend: str, scratch: Path, s3: S3 | None = None
) -> Iterator[Server]:
    """`mlflow server` from the project's venv, stopped (its process group) at teardown.

    Artifacts go to a folder in `scratch`; with `s3`, the server is the team stack's instead.
    """
    port = free_port()
    folder = scratch / "artifacts"
    log = scratch / "mlflow-server.log"
    mlflow = str(project / ".venv" / "bin" / "mlflow")
    command = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", backend, "--artifacts-destination", str(folder)]
    # The job runner (eight more processes, for GenAI jobs) does nothing the pipeline uses;
    # without it the server is ready in 15 s instead of 35 s (load 10, measured).
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if s3:
        command, env = stack_mlflow(project, port, backend, s3)
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=scratch,
            env={**PROJECT_ENV, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process, log)
        if s3:
            yield Server(f"http://127.0.0.1:{port}", backend, lambda: s3.keys("mlflow"))
        else:
            yield Server(f"http://127.0.0.1:{port}", backend, lambda: _files(folder))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def stack_service(project: Path, name: str, s3: S3) -> tuple[list[str], dict[str, str]]:
    """A service of the team stack (deploy/compose.yaml): its command and its variables, with
    this test's S3 server for the stack's `minio` and its keys for `.env`'s.

    No container runs here, so the tests run the compose file's commands as it writes them.
    """
    service = yaml.safe_load((project / "deploy" / "compose.yaml").read_text())["services"][name]
    dotenv = {
        "MINIO_ROOT_USER": s3.env["AWS_ACCESS_KEY_ID"],
        "MINIO_ROOT_PASSWORD": s3.env["AWS_SECRET_ACCESS_KEY"],
    }

    def interpolate(value: str) -> str:  # compose's ${NAME}, ${NAME:-default}, ${NAME:?error}
        pattern = r"\$\{(\w+)(?::([-?])([^}]*))?\}"
        return re.sub(pattern, lambda m: dotenv.get(m[1], m[3] if m[2] == "-" else ""), value)

    env = {key: interpolate(str(value)) for key, value in service["environment"].items()}
    minio = {key: s3.endpoint for key, value in env.items() if value == "http://minio:9000"}
    return list(service["command"]), {**env, **minio}


def stack_mlflow(
    project: Path, port: int, backend: str, s3: S3
) -> tuple[list[str], dict[str, str]]:
    """The stack's MLflow on loopback, with this test's PostgreSQL for the stack's `postgres`."""
    stack_command, env = stack_service(project, "mlflow", s3)
    here = {"--host": "127.0.0.1", "--port": str(port), "--backend-store-uri": backend}
    command = [str(project / ".venv" / "bin" / "mlflow"), "server", "--workers=1"]
    for argument in stack_command[2:]:
        flag, _, value = argument.partition("=")
        command.append(f"{flag}={here.get(flag, value)}")
    return command, env


def make_stack_buckets(project: Path, s3: S3) -> None:
    """The stack's one-shot `buckets` service: its script, from the project's environment."""
    command, env = stack_service(project, "buckets", s3)
    python, script, *buckets = command
    assert (python, script) == ("python", "/opt/stack/create_buckets.py"), command
    local = project / "deploy" / "stack" / "create_buckets.py"  # mlflow.Dockerfile copies it
    sh([str(project / ".venv" / "bin" / "python"), str(local), *buckets], project, env=env)


def _files(folder: Path) -> list[str]:
    return [str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()]


def champion_over_rest(server: Server, model: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"name": model, "alias": "champion"})
    url = f"{server.url}/api/2.0/mlflow/registered-models/alias?{query}"
    with urllib.request.urlopen(url, timeout=30) as response:
        found: dict[str, Any] = json.loads(response.read())["model_version"]
        return found


def check_pipeline_on_server(project: Path, server: Server) -> None:
    env = {"MLFLOW_TRACKING_URI": server.url}
    done, seconds = timed(["make", "pipeline", "export-model"], project, env=env)
    print(f"{server.backend.split(':')[0]} server: make pipeline export-model took {seconds:.0f} s")
    decision = read_json(project / "reports" / "decision.json")
    assert decision["outcome"] == "promoted", decision["reasons"]

    champion = champion_over_rest(server, "credit-risk")
    assert champion["version"] == "1"
    assert champion["run_id"] == decision["run_id"]
    assert registry_state(project, env)["aliases"] == {"champion": "1", "challenger": "1"}
    assert read_json(project / "models" / "champion" / "metadata.json")["version"] == "1"
    assert not (project / "mlflow.db").exists(), "the embedded store was used"
    assert not (project / "mlruns").exists(), "artifacts were written into the project"
    assert any(Path(name).name == "MLmodel" for name in server.stored()), "no model stored"
    assert "exported credit-risk v1" in done.stdout


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder outside pytest's 0700 tree, so that another system user can enter it."""
    folder = Path(tempfile.mkdtemp(prefix="mlops-blueprint-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_pipeline_against_an_mlflow_server(template: Path, tmp_path: Path) -> None:
    project = generate(template, tmp_path, "binary_classification")
    backend = f"sqlite:///{tmp_path / 'srv.db'}"
    with start_mlflow(project, backend, tmp_path) as server:
        check_pipeline_on_server(project, server)


@contextmanager
def postgres_cluster(scratch: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1, run as `postgres` (it refuses root)."""
    bindir = POSTGRES_BIN[-1].parent
    user = pwd.getpwnam("postgres")
    os.chown(scratch, user.pw_uid, user.pw_gid)
    data, port = scratch / "pgdata", free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    sh(
        [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        scratch,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {scratch}"
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "120"]
    sh([*pg_ctl, "-o", options, "-l", str(scratch / "postgres.log"), "start"], scratch)
    try:
        sh(
            [
                *as_postgres,
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "mlflow",
            ],
            scratch,
        )
        # SQLAlchemy 2.1 reads `postgresql://` as psycopg (3); psycopg2 must be named.
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        sh([*pg_ctl, "-m", "fast", "stop"], scratch, check=False)


@pytest.mark.slow
def test_pipeline_against_an_mlflow_server_on_postgresql(
    template: Path, tmp_path: Path, scratch: Path
) -> None:
    if not POSTGRES_BIN:
        skip_without("postgresql")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
        if not shutil.which("runuser"):
            pytest.skip("running as root and `runuser` is missing to run PostgreSQL as postgres")
    # The s3 answer's project: its artifacts and DVC remote in an S3 server, as on a team's.
    project = generate(template, tmp_path, "binary_classification", dvc_remote="s3")
    sh(
        [
            str(BIN / "uv"),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(project / ".venv" / "bin" / "python"),
            "psycopg2-binary",
        ],
        project,
    )
    with postgres_cluster(scratch) as backend, s3_server() as s3:
        make_stack_buckets(project, s3)  # the buckets MLflow and the DVC remote below write to
        with start_mlflow(project, backend, tmp_path, s3) as server:
            check_pipeline_on_server(project, server)
        assert not (tmp_path / "artifacts").exists()
        start = time.monotonic()
        check_dvc_remote_on_s3(project, s3)
        print(f"s3 remote: push, clone and pull checked in {time.monotonic() - start:.0f} s")


def check_dvc_remote_on_s3(project: Path, s3: S3) -> None:
    """`make push` to the s3 answer's remote, then a fresh clone pulls the same bytes back."""
    dvc = str(project / ".venv" / "bin" / "dvc")
    # As the README says: the bucket in .dvc/config (committed), the endpoint in config.local.
    sh([dvc, "remote", "modify", "storage", "url", f"s3://dvc/{project.name}"], project)
    endpoint = [dvc, "remote", "modify", "--local", "storage", "endpointurl", s3.endpoint]
    sh(endpoint, project)
    _, pushed = timed(["make", "push"], project, env=s3.env)
    tracked = [".dvc/config", "dvc.lock", "data/raw/credit.csv.dvc"]
    sh(["git", "add", *tracked, *map(str, project.glob("data/**/.gitignore"))], project)
    sh(["git", "commit", "--quiet", "--no-verify", "-m", "The data in S3"], project)

    clone = project.parent / "clone"
    sh(["git", "clone", "--quiet", str(project), str(clone)], project.parent)
    # What `endpoint` writes there (a dvc command costs 2 s): git leaves it out of clones.
    assert not (clone / ".dvc" / "config.local").exists()
    shutil.copy(project / ".dvc" / "config.local", clone / ".dvc" / "config.local")
    _, pulled = timed([dvc, "pull"], clone, env=s3.env)
    print(f"s3 remote: make push {pushed:.1f} s, dvc pull {pulled:.1f} s")

    # DVC's cached outputs (the raw table, the split): in the bucket under their MD5, and
    # the same bytes in the clone.
    processed = [p for p in (project / "data" / "processed").rglob("*") if p.is_file()]
    files = [RAW, *(p.relative_to(project) for p in processed)]
    assert len(files) > 2
    stored = set(s3.keys("dvc"))
    for name in files:
        data = (project / name).read_bytes()
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert f"{project.name}/files/md5/{digest[:2]}/{digest[2:]}" in stored, name
        assert (clone / name).read_bytes() == data, name
