"""`{{ cookiecutter.project_slug }} predict IN OUT`: the batch path agrees with the API's model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner, Result

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.model_store import load_model_dir

from .conftest import CONTRACT


def score_file(table: pd.DataFrame, export_dir: Path, folder: Path) -> Result:
    table.to_csv(folder / "in.csv", index=False)
    arguments = ["predict", str(folder / "in.csv"), str(folder / "out.parquet")]
    return CliRunner().invoke(app, [*arguments, "--model-dir", str(export_dir)])


def test_predict_csv_to_parquet(export_dir: Path, tmp_path: Path) -> None:
    contract = Contract.load(CONTRACT)
    table = make_sample(contract, 50, seed=3)
    result = score_file(table, export_dir, tmp_path)
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert len(scored) == 50
    features = {name: table[name] for name in contract.feature_names}
    expected = load_model_dir(export_dir).predict(contract.encode(features))
    assert scored["prediction"].tolist() == expected.predictions.tolist()
    classes = contract.target.classes or []
    assert {f"probability_{label}" for label in classes} <= set(scored.columns)


def test_missing_column_is_named(export_dir: Path, tmp_path: Path) -> None:
    result = score_file(pd.DataFrame({"age": [30]}), export_dir, tmp_path)
    assert result.exit_code == 1
    assert "missing feature columns: annual_income" in result.output
