"""The pipeline on a table it was not written for: another contract, another task kind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.datasets import load_diabetes
from support import FIXTURES
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app


def _diabetes_table() -> pd.DataFrame:
    data = load_diabetes(as_frame=True).frame
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "patient_id": np.arange(len(data)),
            "age": data["age"],
            "bmi": data["bmi"].mask(rng.random(len(data)) < 0.1),
            "bp": data["bp"],
            "s1": data["s1"],
            "s5": data["s5"].mask(rng.random(len(data)) < 0.05),
            "bp_band": pd.cut(data["bp"], [-1, -0.02, 0.03, 1], labels=["low", "normal", "high"])
            .astype(object)
            .mask(rng.random(len(data)) < 0.05),
            "on_medication": rng.random(len(data)) < 0.3,
            "sex": np.where(data["sex"] > 0, "male", "female"),
            "progression": data["target"],
        }
    )
    return table


def test_validate_split_train_evaluate_on_diabetes(
    mlflow_store: str, make_project: Callable[..., Path]
) -> None:
    project = make_project(
        {
            "data": {"raw": "data/raw/diabetes.parquet", "contract": "diabetes.yaml"},
            "tracking": {"experiment_name": "test-diabetes"},
            "fairness": {"min_group_size": 20},
        },
        contract_file=FIXTURES / "diabetes" / "schema.yaml",
    )
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["validation"]["mean_bounds"] = {"bp": [-0.1, 0.1]}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    raw = project / "data" / "raw" / "diabetes.parquet"
    raw.parent.mkdir(parents=True)
    _diabetes_table().to_parquet(raw, index=False)

    for stage in ("validate", "split", "train", "evaluate"):
        result = CliRunner().invoke(app, [stage])
        assert result.exit_code == 0, f"{stage}: {result.output} {result.exception!r}"

    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert metrics["r2"] > 0.2
    fairness = json.loads((project / "reports" / "fairness.json").read_text())
    assert set(fairness["sex"]["gaps"]) == {"relative_mae_difference"}, fairness
    assert (project / "reports" / "plots" / "residuals.json").is_file()
