"""A standalone Spark cluster on loopback for the session: a master and two workers, started
with pyspark's own launcher (bin/spark-class), each bound to 127.0.0.1 on free ports.

JVMs start slowly (seconds each), so one cluster serves every Spark test of a run; the
commands under test connect to it as any client would, with --master spark://127.0.0.1:PORT.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyspark
import pytest

WORKERS = 2
# Each worker offers one core and a small heap: enough for the test tables, and two of them
# fit on a 2-core machine beside the driver.
WORKER_CORES = "1"
WORKER_MEMORY = "768m"
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.home = Path(pyspark.__file__).parent
        self.port, self.ui_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "SPARK_HOME": str(self.home),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(folder),
            "PYSPARK_PYTHON": sys.executable,
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def master(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _start(self, name: str, *arguments: str) -> None:
        command = [str(self.home / "bin" / "spark-class"), *arguments]
        with (self.folder / f"{name}.log").open("wb") as log:
            self.processes.append(
                subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            )

    def start(self) -> Cluster:
        self._start(
            "master",
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--webui-port", str(self.ui_port)),
        )
        for number in range(WORKERS):
            self._start(
                f"worker-{number}",
                "org.apache.spark.deploy.worker.Worker",
                self.master,
                *("--host", "127.0.0.1", "--webui-port", str(free_port())),
                *("--cores", WORKER_CORES, "--memory", WORKER_MEMORY),
                *("--work-dir", str(self.folder / f"work-{number}")),
            )
        self._wait_for_workers()
        return self

    def _wait_for_workers(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if any(process.poll() is not None for process in self.processes):
                break
            try:
                url = f"http://127.0.0.1:{self.ui_port}/json/"
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                    if json.load(answer).get("aliveworkers", 0) >= WORKERS:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        logs = "\n".join(path.read_text()[-2000:] for path in sorted(self.folder.glob("*.log")))
        self.stop()
        raise RuntimeError(f"the Spark cluster did not come up:\n{logs}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def spark_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The master URL of a running two-worker cluster (stopped at the end of the session)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java: Spark needs Java 17+ (Debian: openjdk-17-jre-headless)")
    cluster = Cluster(tmp_path_factory.mktemp("spark-cluster")).start()
    try:
        yield cluster.master
    finally:
        cluster.stop()
