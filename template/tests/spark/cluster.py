"""One standalone Spark cluster on loopback for the session (spark/standalone.py): a master and
two workers. JVMs start slowly, so every Spark test of a run shares it; the commands under test
connect to it as any client would, with --master spark://127.0.0.1:PORT."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from {{ cookiecutter.package_name }}.spark.standalone import StandaloneCluster


@pytest.fixture(scope="session")
def spark_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The master URL of a running two-worker cluster, stopped at the end of the session."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java: Spark needs Java 17+ (Debian: openjdk-17-jre-headless)")
    # The drivers the tests start bind to loopback too: nothing leaves this machine.
    previous = os.environ.get("SPARK_LOCAL_IP")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    try:
        with StandaloneCluster(tmp_path_factory.mktemp("spark-cluster"), workers=2) as master:
            yield master
    finally:
        if previous is None:
            os.environ.pop("SPARK_LOCAL_IP", None)
        else:
            os.environ["SPARK_LOCAL_IP"] = previous
