"""A standalone Spark cluster on this machine: a master and N workers started with pyspark's own
launcher (bin/spark-class), each bound to 127.0.0.1 on free ports. For the tests and
`make bench-spark`, and for trying `--master spark://...` before a real cluster exists.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import pyspark

from . import SparkError

START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class StandaloneCluster:
    """`with StandaloneCluster(folder, workers=2) as master:` a spark://127.0.0.1:PORT URL.

    Each worker offers `cores` and `memory`; the memory must hold one executor's heap
    (spark.executor.memory, 1g by default), or no executor is ever placed and jobs wait.
    """

    def __init__(self, folder: Path, workers: int = 2, cores: int = 1, memory: str = "1g") -> None:
        self.folder = folder
        self.workers, self.cores, self.memory = workers, cores, memory
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

    def __enter__(self) -> str:
        self.start()
        return self.master

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._launch(
            "master",
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--webui-port", str(self.ui_port)),
        )
        for number in range(self.workers):
            self._launch(
                f"worker-{number}",
                "org.apache.spark.deploy.worker.Worker",
                self.master,
                *("--host", "127.0.0.1", "--webui-port", str(free_port())),
                *("--cores", str(self.cores), "--memory", self.memory),
                *("--work-dir", str(self.folder / f"work-{number}")),
            )
        self._wait_for_workers()

    def _launch(self, name: str, *arguments: str) -> None:
        command = [str(self.home / "bin" / "spark-class"), *arguments]
        with (self.folder / f"{name}.log").open("wb") as log:
            # pyspark's own launcher, with arguments this class builds.
            process = subprocess.Popen(  # noqa: S603
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)

    def _wait_for_workers(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        url = f"http://127.0.0.1:{self.ui_port}/json/"
        while time.monotonic() < deadline:
            if any(process.poll() is not None for process in self.processes):
                break
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if json.load(answer).get("aliveworkers", 0) >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        logs = "\n".join(path.read_text()[-2000:] for path in sorted(self.folder.glob("*.log")))
        self.stop()
        raise SparkError(f"the standalone cluster did not come up:\n{logs}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes = []
