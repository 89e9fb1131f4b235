"""One monitor run over a logged window: features, predictions, versions, labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import load_params
from {{ cookiecutter.package_name }}.data import DataError, make_sample
from {{ cookiecutter.package_name }}.monitoring.monitor import monitor
from {{ cookiecutter.package_name }}.schema import Contract

from .conftest import CHAMPION, LOG_DIR, LogTraffic


def run(project: Path, **options: Any) -> dict[str, Any]:
    return monitor(load_params(project / "params.yaml"), project / CHAMPION, **options)


def checks(report: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"] if check["kind"] == kind}


def test_traffic_like_training_is_no_drift(
    project: Path, log_traffic: LogTraffic, contract: Contract
) -> None:
    log_traffic(make_sample(contract, 800, seed=11))
    report = run(project)
    assert report["verdict"] == "no_drift"
    assert report["drifted_features"] == []
    assert report["window"]["rows"] == 800
    assert report["window"]["requests"] == 32
    assert set(checks(report, "feature")) == set(contract.feature_names)
    assert {"prediction"} <= set(checks(report, "prediction"))


def test_shifted_columns_drift_and_only_they(
    project: Path, log_traffic: LogTraffic, contract: Contract
) -> None:
    table = make_sample(contract, 800, seed=12)
    table["loan_amount"] *= 2.5
    table["employment_type"] = np.where(table.index % 2 == 0, "retired", table.employment_type)
    log_traffic(table)
    report = run(project)
    assert report["verdict"] == "drift"
    assert sorted(report["drifted_features"]) == ["employment_type", "loan_amount"]
    assert [c["name"] for c in report["checks"][:2]] == report["drifted_features"]


def test_an_empty_window_is_no_traffic(project: Path, log_traffic: LogTraffic) -> None:
    report = run(project)
    assert report["verdict"] == "no_traffic"
    assert report["window"]["rows"] == 0
    assert all(check["status"] != "drift" for check in report["checks"])


def test_other_versions_are_counted_apart(
    project: Path, log_traffic: LogTraffic, contract: Contract
) -> None:
    log_traffic(make_sample(contract, 400, seed=13))
    shifted = make_sample(contract, 300, seed=14)
    shifted["age"] = 99
    log_traffic(shifted, version="2")
    report = run(project)
    assert report["window"]["rows"] == 400
    assert report["window"]["other_versions"] == {"2": 300}
    assert "age" not in report["drifted_features"]


def test_corrupt_lines_are_counted(
    project: Path, log_traffic: LogTraffic, contract: Contract
) -> None:
    log_traffic(make_sample(contract, 200, seed=15))
    with (project / LOG_DIR / "predictions.jsonl").open("ab") as log:
        log.write(b'{"request_id": "torn", "timest\n')
    assert run(project)["window"]["corrupt_lines"] == 1


def test_labels_are_joined_and_unknown_ids_counted(
    project: Path, log_traffic: LogTraffic, contract: Contract
) -> None:
    table = make_sample(contract, 400, seed=16)
    ids = log_traffic(table, per_request=1)
    labels = pd.DataFrame(
        {
            "request_id": [*ids, "never-logged-1", "never-logged-2"],
            contract.target.name: [*table[contract.target.name], 0, 1],
            "loss": np.arange(len(ids) + 2, dtype=float),
        }
    )
    labels.to_csv(project / "labels.csv", index=False)
    report = run(project, labels=project / "labels.csv")
    concept = report["concept"]
    assert concept["matched"] == 400
    assert concept["unknown_request_ids"] == 2
    assert set(concept["metrics"]) == set(concept["champion_metrics"])
    assert concept["kpis"]["loss"] == {"sum": sum(range(400)), "mean": 199.5}
    concept_check = checks(report, "concept")
    assert len(concept_check) == 1
    assert next(iter(concept_check.values()))["status"] in ("ok", "drift")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"request_id": ["x"]}, "need the column"),
        ({"request_id": ["x", "y"], "target": [1, None]}, "missing on 1 row"),
        ({"request_id": ["x", "x"], "target": [1, 1]}, r"1 label\(s\) repeat .*e.g. x"),
        ({"request_id": ["x"], "row": ["first"], "target": [1]}, "`row` must hold"),
        ({"request_id": ["x"], "target": [1], "region": ["north"]}, "must be numeric: region"),
    ],
)
def test_bad_labels_are_named(
    project: Path, contract: Contract, labels: dict[str, Any], message: str
) -> None:
    table = pd.DataFrame(labels).rename(columns={"target": contract.target.name})
    table.to_csv(project / "labels.csv", index=False)
    with pytest.raises(DataError, match=message):
        run(project, labels=project / "labels.csv")
