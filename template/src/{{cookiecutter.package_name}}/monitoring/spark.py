"""`monitor --engine spark`: the drift counts of a Parquet prediction log, on the cluster.

Each partition counts its rows into a copy of the champion's empty counts (monitor.py's
`DriftCounts`: the training bins, categories and missing values), the driver merges the
copies, and monitor.py turns them into the same statistics and verdict as one process does.
The log is the flat rows `compact-log` writes (monitoring/log_store.py), wherever they are.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, functions
from pyspark.sql.types import LongType

from ..config import Params
from ..spark.session import spark_session
from ..spark.tables import read_table
from .drift import DriftAccumulator
from .log_store import compact
from .monitor import DriftCounts, default_since, drift_report

# The log's times are UTC nanoseconds, which Spark reads only as numbers (as this option says).
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"


def default_log(params: Params) -> str:
    """The compacted segments of the log folder params.yaml names."""
    return str(params.monitoring.log.directory / "predictions-*.parquet")


def monitor_on_spark(
    params: Params,
    model_dir: Path,
    log_path: str | None,
    *,
    since: datetime | None,
    until: datetime | None,
    master: str | None,
) -> dict[str, Any]:
    """monitor.monitor's report for the window [since, until) of the log at `log_path`
    (default: the log folder, compacted first as `monitor` does)."""
    since = default_since(params, since, until, None)
    counts = DriftCounts.start(params, model_dir)
    if log_path is None:
        log = params.monitoring.log
        compact(log.directory, counts.reference.contract, log.retention_days)
        log_path = default_log(params)
    with spark_session(master, "monitor") as spark:
        spark.conf.set(NANOS_AS_LONG, "true")
        window = _within(read_table(spark, log_path), since, until)
        versions = {
            str(row["model_version"]): int(row["count"])
            for row in window.groupBy("model_version").count().collect()
        }
        requests = window.filter(functions.col("row") == 0).count()
        version = functions.col("model_version").cast("string")
        served = window.filter(version == counts.reference.version)
        # The counters only: the reference table stays on the driver.
        empty = (counts.features, counts.predictions)
        parts = served.mapInPandas(partial(_count, empty), "counts binary").collect()
    for part in parts:
        # Made by this job's own executors from the counters shipped to them, never by a user.
        features, predictions = pickle.loads(part["counts"])  # noqa: S301
        counts.features.merge(features)
        counts.predictions.merge(predictions)
    summary = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "last": None,
        "requests": requests,
        "corrupt_lines": 0,  # Parquet rows were checked when they were compacted
    }
    return drift_report(counts, summary, versions, None)


def _within(log: DataFrame, since: datetime | None, until: datetime | None) -> DataFrame:
    stamp = functions.col("timestamp")
    nanos = isinstance(log.schema["timestamp"].dataType, LongType)

    def moment(value: datetime) -> Column:
        if nanos:
            return functions.lit(int(value.timestamp() * 1_000_000) * 1_000)
        return functions.lit(value)

    if since is not None:
        log = log.filter(stamp >= moment(since))
    if until is not None:
        log = log.filter(stamp < moment(until))
    return log


def _count(
    empty: tuple[DriftAccumulator, Any], batches: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """On an executor: this partition's rows counted into a copy of the empty counters (each
    task unpickles its own copy of the job's function, counters included)."""
    features, predictions = empty
    for batch in batches:
        features.update(batch)
        predictions.update(batch)
    yield pd.DataFrame({"counts": [pickle.dumps(empty)]})
