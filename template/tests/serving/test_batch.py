"""`{{ cookiecutter.project_slug }} predict IN OUT`: the batch path agrees with the API's model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.model_store import load_model_dir

from .conftest import CONTRACT


def test_predict_csv_to_parquet(export_dir: Path, tmp_path: Path) -> None:
    contract = Contract.load(CONTRACT)
    table = make_sample(contract, 50, seed=3)
    table.to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "predict",
            str(tmp_path / "in.csv"),
            str(tmp_path / "out.parquet"),
            "--model-dir",
            str(export_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert len(scored) == 50
    features = {name: table[name] for name in contract.feature_names}
    expected = load_model_dir(export_dir).predict(contract.encode(features))
    assert scored["prediction"].tolist() == expected.predictions.tolist()
    classes = contract.target.classes or []
    assert {f"probability_{label}" for label in classes} <= set(scored.columns)


def test_missing_column_is_named(export_dir: Path, tmp_path: Path) -> None:
    pd.DataFrame({"age": [30]}).to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "predict",
            str(tmp_path / "in.csv"),
            str(tmp_path / "out.parquet"),
            "--model-dir",
            str(export_dir),
        ],
    )
    assert result.exit_code == 1
    assert "missing feature columns: annual_income" in result.output
