"""One standalone Spark cluster on loopback for the session (spark/standalone.py): a master and
two workers, and a client session on it (spark/session.py's) that the commands under test find
active and use, as a notebook's commands would. JVMs start slowly: the cluster, its executors
and their Python workers start once for every Spark test of a run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from {{ cookiecutter.package_name }}.spark.session import spark_session
from {{ cookiecutter.package_name }}.spark.standalone import StandaloneCluster


@pytest.fixture(scope="session")
def spark_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The master URL of a running two-worker cluster, with a session of this process on it;
    both stopped at the end of the session."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java: Spark needs Java 17+ (Debian: openjdk-17-jre-headless)")
    # The driver binds to loopback too: nothing leaves this machine.
    previous = os.environ.get("SPARK_LOCAL_IP")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    try:
        folder = tmp_path_factory.mktemp("spark-cluster")
        with StandaloneCluster(folder, workers=2) as master, spark_session(master, "tests"):
            yield master
    finally:
        if previous is None:
            os.environ.pop("SPARK_LOCAL_IP", None)
        else:
            os.environ["SPARK_LOCAL_IP"] = previous
