"""Serving tests run the real service: uvicorn in a subprocess on a free loopback port."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import LOOPBACK_TLS, SAMPLE, TARGETS

from .exports import RECIPE, write_export

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACT = SAMPLE / "schema.yaml"
ADMIN_TOKEN = "admin-secret"  # pragma: allowlist secret
PII_HASH_KEY = "test-pii-key"  # pragma: allowlist secret
API_KEY = "s3cret"  # pragma: allowlist secret
PROJECT_KIND = yaml.safe_load(CONTRACT.read_text())["target"]["kind"]
OTHER_KINDS = [kind for kind in TARGETS if kind != PROJECT_KIND]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningServer:
    def __init__(self, env: dict[str, str], cwd: Path, workers: int = 1) -> None:
        self.workdir = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"server-{self.port}.log"
        self.terminated = False
        command = [
            *(sys.executable, "-m", "uvicorn", "--factory", "{{ cookiecutter.package_name }}.serving.app:create_app"),
            *("--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)),
        ]
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "SERVING_CONFIG": "none", **env}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=full_env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_healthy(self, timeout: float = 180.0) -> RunningServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=1, verify=LOOPBACK_TLS)
                if health.status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"server not healthy in {timeout}s:\n{self.log_path.read_text()}")

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, verify=LOOPBACK_TLS, **kwargs)  # type: ignore[arg-type]

    def terminate(self) -> None:
        """SIGTERM once (a second one makes uvicorn skip its graceful shutdown)."""
        if self.process.poll() is None and not self.terminated:
            self.process.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self) -> int:
        self.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text()


def cached_export(config: pytest.Config, version: str, kind: str | None = None) -> Path:
    """An export folder kept in pytest's cache until the contract or the recipe changes;
    `kind` swaps the contract's target for one of TARGETS.

    Training and saving through mlflow takes several seconds; most test runs can skip it.
    """
    recipe = CONTRACT.read_bytes() + b"".join(path.read_bytes() for path in RECIPE)
    # With gcc the export compiles the trees, without it it says why not: not the same export.
    recipe += b"gcc" if shutil.which("gcc") else b"no compiler"
    key = hashlib.sha256(recipe).hexdigest()[:16]
    folder = config.cache.mkdir("serving-exports") / f"{key}-v{version}-{kind or 'project'}"
    if not folder.is_dir():
        # Built aside and renamed into place: `make test`'s workers may build the same export
        # at once, and a reader must never see half of one.
        scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
        contract = CONTRACT
        if kind is not None:
            contract = scratch / "schema.yaml"
            document = yaml.safe_load(CONTRACT.read_text())
            contract.write_text(yaml.safe_dump({**document, "target": TARGETS[kind]}))
        write_export(scratch / "champion", contract, version=version, seed=int(version))
        try:
            scratch.rename(folder)
        except OSError:  # another worker's is in place: the same bytes' worth of export
            shutil.rmtree(scratch)
    return folder / "champion"


@pytest.fixture(scope="session")
def export_dir(pytestconfig: pytest.Config) -> Path:
    """A champion in the export layout, as `make export-model` writes it."""
    return cached_export(pytestconfig, "1")


@pytest.fixture(scope="session")
def export_v2(pytestconfig: pytest.Config) -> Path:
    """The next champion (version 2), for hot-swap and shadow tests."""
    return cached_export(pytestconfig, "2")


# The main server's body limit, small enough that a test can pass it.
MAX_BODY_BYTES = 65_536


@pytest.fixture(scope="session")
def servers(
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    export_dir: Path,
    export_v2: Path,
) -> Iterator[dict[str, RunningServer]]:
    """Every server the tests need, started together: start-up is mostly imports, and
    overlapping them saves most of the suite's wall time."""
    swap_dir = tmp_path_factory.mktemp("swap")
    (swap_dir / "current").symlink_to(export_dir)
    main_dir = tmp_path_factory.mktemp("server")
    canary_dir = tmp_path_factory.mktemp("canary")
    configs = {
        "main": (
            {
                "MODEL_DIR": str(export_dir),
                "PREDICTION_LOG_DIR": str(main_dir / "predictions"),
                "MAX_BATCH_ROWS": "100",
                "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
                "ADMIN_TOKEN": ADMIN_TOKEN,
                "PII_HASH_KEY": PII_HASH_KEY,
            },
            main_dir,
        ),
        "keyed": (
            {
                "MODEL_DIR": str(export_dir),
                "API_KEY": API_KEY,
                "UNKNOWN_CATEGORIES": "ignore",
                "PREDICTION_LOG_DIR": "",
            },
            tmp_path_factory.mktemp("keyed"),
        ),
        "swap": (
            {
                "MODEL_DIR": str(swap_dir / "current"),
                "SHADOW_MODEL_DIR": str(export_v2),
                "PREDICTION_LOG_DIR": str(swap_dir / "predictions"),
                "ADMIN_TOKEN": ADMIN_TOKEN,
            },
            swap_dir,
        ),
        "shutdown": (
            {"MODEL_DIR": str(export_dir), "PREDICTION_LOG_DIR": ""},
            tmp_path_factory.mktemp("shutdown"),
        ),
        "canary": (
            {
                "MODEL_DIR": str(export_dir),
                "CANARY_MODEL_DIR": str(export_v2),
                "CANARY_PERCENT": "50",
                "PREDICTION_LOG_DIR": str(canary_dir / "predictions"),
                "ADMIN_TOKEN": ADMIN_TOKEN,
            },
            canary_dir,
        ),
    }
    started = {name: RunningServer(env, workdir) for name, (env, workdir) in configs.items()}
    # The other task kinds; the first also runs two workers that share their metrics.
    for kind, workers in zip(OTHER_KINDS, (2, 1), strict=True):
        workdir = tmp_path_factory.mktemp(kind)
        (workdir / "metrics").mkdir()
        env = {
            "MODEL_DIR": str(cached_export(pytestconfig, "1", kind)),
            "PREDICTION_LOG_DIR": str(workdir / "predictions"),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        }
        started[kind] = RunningServer(env, workdir, workers)
    yield started
    for running in started.values():  # every SIGTERM first: the shutdowns overlap
        running.terminate()
    for running in started.values():
        running.stop()


@pytest.fixture(scope="session")
def server(servers: dict[str, RunningServer]) -> RunningServer:
    """The default server: prediction log on, small limits, admin token set."""
    return servers["main"].wait_healthy()


@pytest.fixture(scope="session")
def keyed_server(servers: dict[str, RunningServer]) -> RunningServer:
    """API_KEY set and `unknown_categories: ignore`; no prediction log."""
    return servers["keyed"].wait_healthy()


@pytest.fixture(scope="session")
def swap_server(servers: dict[str, RunningServer]) -> RunningServer:
    """MODEL_DIR is a symlink the test flips; version 2 runs as the shadow."""
    return servers["swap"].wait_healthy()


@pytest.fixture(scope="session")
def canary_server(servers: dict[str, RunningServer]) -> RunningServer:
    """Version 2 as the canary beside version 1, for half of the traffic to start with."""
    return servers["canary"].wait_healthy()


@pytest.fixture(scope="session")
def doomed_server(servers: dict[str, RunningServer]) -> RunningServer:
    """A server the shutdown test stops."""
    return servers["shutdown"].wait_healthy()


@pytest.fixture(scope="session")
def kind_servers(
    server: RunningServer, servers: dict[str, RunningServer]
) -> dict[str, RunningServer]:
    """A server for each task kind: the main one for the project's own, then the others."""
    return {PROJECT_KIND: server, **{kind: servers[kind].wait_healthy() for kind in OTHER_KINDS}}


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def wait_for_log_record(path: Path, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            # Only whole lines: the writer may be half-way through appending the last one. Split
            # on "\n" alone: the fuzzed requests leave strings holding U+2028 and the like in
            # this log, raw in the JSON, and str.splitlines() breaks lines there too.
            for line in text[: text.rfind("\n") + 1].split("\n")[:-1]:
                record: dict[str, Any] = json.loads(line)
                if record["request_id"] == request_id:
                    return record
        time.sleep(0.05)
    raise AssertionError(f"no log record for {request_id} in {path}")
