"""`--engine spark`: batch scoring, validation and drift on Apache Spark, for tables one machine
cannot hold. The same contract checks, model, suite and drift statistics as the one-process
commands; only where the rows are counted and scored changes.

Light on purpose: the CLI imports this module for its options; pyspark is imported by the
modules that run a job (session.py, scoring.py, validation.py, monitoring/spark.py).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class Engine(StrEnum):
    LOCAL = "local"  # this process, pandas
    SPARK = "spark"  # the cluster the configuration names (session.py)


class SparkError(RuntimeError):
    """Spark cannot run the job: no Java, an unreachable master, a failed job."""


EngineOption = Annotated[
    Engine, typer.Option(help="Where the rows are processed: this process, or Spark.")
]
MasterOption = Annotated[
    str | None,
    typer.Option(
        envvar="SPARK_MASTER",
        help="Spark master URL (spark://host:7077, k8s://..., local[4]); default: Spark's "
        "configuration (spark-defaults.conf, spark-submit), else local[*]. SPARK_REMOTE "
        "(sc://host:15002) runs on a Spark Connect server instead.",
    ),
]
