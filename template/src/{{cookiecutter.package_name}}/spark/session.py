"""The Spark session of one command, from configuration; what a user can fix, in one line.

Where the job runs is configuration, never code: `SPARK_REMOTE` (a Spark Connect server),
else `--master` / `SPARK_MASTER`, else Spark's own configuration (spark-defaults.conf in
SPARK_CONF_DIR, spark-submit's --master), which defaults to local[*]. Executors run the
project's package: on a cluster, its image or environment must have it installed, at the path
`PYSPARK_PYTHON` names (this interpreter by default).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from . import SparkError

# A master that does not answer a TCP connection in this time is reported unreachable:
# Spark's own client would retry for a minute, then give up without saying why.
CONNECT_TIMEOUT_S = 5.0
# Where `java` comes from when JAVA_HOME is unset; Spark 4 needs Java 17 or newer.
JAVA_HINT = "Spark 4 needs Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)"


@contextmanager
def spark_session(master: str | None, app: str) -> Iterator[SparkSession]:
    """A session on the configured cluster, checked to be reachable before any job runs, and
    stopped after. A session already active in this process (a notebook's, a test suite's) is
    used as it is, and left running: it is its owner's to stop."""
    remote = os.environ.get("SPARK_REMOTE")
    if remote:
        check_reachable(remote)
        session = SparkSession.builder.remote(remote).appName(app).getOrCreate()
        yield session
        return
    check_java()
    if master:
        check_reachable(master)
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    spark = _start(master, app)
    try:
        yield spark
    finally:
        spark.stop()


def _start(master: str | None, app: str) -> SparkSession:
    # Executors start this interpreter unless the cluster names its own (see the docstring).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app).config("spark.ui.showConsoleProgress", "false")
    if master:
        builder = builder.master(master)
    try:
        spark = builder.getOrCreate()
    except PySparkException as exc:
        raise SparkError(f"Spark did not start: {exc}") from None
    spark.sparkContext.setLogLevel("ERROR")
    try:
        check_reachable(spark.sparkContext.master or "")  # configured outside: spark-defaults
    except SparkError:
        spark.stop()
        raise
    return spark


def check_java() -> None:
    home = os.environ.get("JAVA_HOME")
    if home:
        if not (Path(home) / "bin" / "java").is_file():
            raise SparkError(f"JAVA_HOME={home} has no bin/java: {JAVA_HINT}")
    elif shutil.which("java") is None:
        raise SparkError(f"Java not found (no JAVA_HOME, no java on PATH): {JAVA_HINT}")


def check_reachable(url: str) -> None:
    """spark://host:port[,host:port] (standalone, one of them) and sc://host:port (Connect);
    other masters (local, k8s://, yarn) are reached by Spark itself."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("spark", "sc"):
        return
    default_port = 7077 if scheme == "spark" else 15002
    addresses = url.split("://", 1)[1].split("/", 1)[0].split(";", 1)[0].split(",")
    problems = []
    for address in addresses:
        parts = urlsplit(f"//{address}")
        host, port = parts.hostname or "localhost", parts.port or default_port
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            problems.append(f"{host}:{port} ({exc.strerror or exc})")
            continue
        return
    raise SparkError(f"Spark master {url} is unreachable: {', '.join(problems)}")
