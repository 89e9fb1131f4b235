"""`monitor --engine spark`: the drift counts of a Parquet log made on a standalone cluster,
and the same statistics and verdict as the one-process monitor."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.config import load_params
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.monitoring.log_store import compact
from {{ cookiecutter.package_name }}.monitoring.monitor import monitor
from {{ cookiecutter.package_name }}.monitoring.spark import monitor_on_spark
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME, segment_name

from .conftest import CHAMPION, LOG_DIR, LogTraffic


def as_parquet(project: Path, contract: Contract) -> None:
    """The active log rotated (an hour ago) and compacted, as `compact-log` does in production."""
    rotated = segment_name(datetime.now(UTC) - timedelta(hours=1), 1)
    (project / LOG_DIR / LOG_FILE_NAME).rename(project / LOG_DIR / rotated)
    compact(project / LOG_DIR, contract, retention_days=30)


def close(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float):
        return (math.isnan(ours) and math.isnan(theirs)) or math.isclose(
            ours, theirs, rel_tol=1e-9, abs_tol=1e-12
        )
    return bool(ours == theirs)


@pytest.mark.parametrize("shifted", [False, True])
def test_spark_counts_give_the_monitors_statistics_and_verdict(
    shifted: bool,
    spark_master: str,
    project: Path,
    log_traffic: LogTraffic,
    contract: Contract,
) -> None:
    table = make_sample(contract, 1200, seed=41)
    if shifted:
        numeric = next(c for c in contract.features if c.type.value == "numeric")
        table[numeric.name] *= 2.5
    log_traffic(table)
    log_traffic(make_sample(contract, 100, seed=42), version="2")  # counted apart
    as_parquet(project, contract)
    params = load_params(project / "params.yaml")

    local = monitor(params, project / CHAMPION)
    spark = monitor_on_spark(
        params, project / CHAMPION, None, since=None, until=None, master=spark_master
    )
    assert local["verdict"] == ("drift" if shifted else "no_drift")
    assert spark["verdict"] == local["verdict"]
    assert spark["drifted_features"] == local["drifted_features"]
    for key in ("rows", "requests", "other_versions"):
        assert spark["window"][key] == local["window"][key], key
    assert [c["name"] for c in spark["checks"]] == [c["name"] for c in local["checks"]]
    for ours, theirs in zip(local["checks"], spark["checks"], strict=True):
        assert theirs["status"] == ours["status"], ours["name"]
        assert theirs["current_rows"] == ours["current_rows"], ours["name"]
        for name, value in ours["statistics"].items():
            assert close(value, theirs["statistics"][name]), (ours["name"], name)
        if ours["histogram"] is not None:
            ours_counts = np.asarray(ours["histogram"].get("current", []), dtype=float)
            theirs_counts = np.asarray(theirs["histogram"].get("current", []), dtype=float)
            assert np.allclose(ours_counts, theirs_counts), ours["name"]
