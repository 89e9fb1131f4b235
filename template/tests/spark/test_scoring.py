"""`predict --engine spark` on a standalone cluster: what `predict` gives, on the same rows, or
one clear line and nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.spark.standalone import free_port

TOLERANCE = 1e-12


def predict(*arguments: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["predict", *arguments], env=env)


def spark_predict(master: str, source: Path, out: Path, export_dir: Path) -> Result:
    options = ["--engine", "spark", "--master", master, "--model-dir", str(export_dir)]
    return predict(str(source), str(out), *options)


def with_bad_rows(contract: Contract) -> pd.DataFrame:
    """A sample and three rows the API refuses: out of range, unknown category, missing."""
    table = make_sample(contract, 400, seed=21)
    numeric = next(c for c in contract.features if c.max is not None)
    categorical = next(c for c in contract.features if c.categories is not None)
    required = next(c for c in contract.features if not c.nullable)
    table.loc[3, numeric.name] = numeric.max + 1
    table[categorical.name] = table[categorical.name].astype(object)
    table.loc[7, categorical.name] = "no such category"
    table.loc[11, required.name] = None
    return table


def by_id(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    key = contract.id or contract.feature_names[0]
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


def assert_same(local: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert len(local) == len(spark)
    for name in local.columns:
        ours, theirs = local[name], spark[name]
        if pd.api.types.is_float_dtype(ours):
            difference = np.abs(ours.to_numpy(float) - theirs.to_numpy(float))
            assert np.nanmax(difference, initial=0.0) <= TOLERANCE, name
            assert (ours.isna() == theirs.isna()).all(), name
        else:
            assert ours.astype(str).tolist() == theirs.astype(str).tolist(), name


def test_spark_scores_and_refuses_what_predict_does(
    spark_master: str, export_dir: Path, contract: Contract, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    with_bad_rows(contract).to_csv(source, index=False)
    local = predict(str(source), str(tmp_path / "local.parquet"), "--model-dir", str(export_dir))
    assert local.exit_code == 0, local.output
    result = spark_predict(spark_master, source, tmp_path / "scored", export_dir)
    assert result.exit_code == 0, result.output
    assert "scored 397 rows" in result.output
    assert "refused 3 rows" in result.output

    scored = pd.read_parquet(tmp_path / "scored")
    expected = pd.read_parquet(tmp_path / "local.parquet")
    assert_same(by_id(expected, contract), by_id(scored[expected.columns], contract))
    assert set(scored["model_version"]) == {"1"}
    assert {"model_name", "run_id", "git_commit", "data_hash"} <= set(scored.columns)

    rejects = by_id(pd.read_parquet(tmp_path / "scored-rejects"), contract)
    expected_rejects = by_id(pd.read_parquet(tmp_path / "local-rejects.parquet"), contract)
    assert_same(expected_rejects, rejects[expected_rejects.columns])
    assert all(reason.split(":")[0] in contract.feature_names for reason in rejects["reason"])
    assert sorted(p.name for p in tmp_path.iterdir() if ".partial-" in p.name) == []


def test_a_failed_job_leaves_the_old_output_and_nothing_else(
    spark_master: str, export_dir: Path, contract: Contract, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    make_sample(contract, 2000, seed=22).to_parquet(source / "part-0.parquet", index=False)
    (source / "part-1.parquet").write_bytes(b"PAR1 not a parquet file PAR1")
    out = tmp_path / "scored"
    out.mkdir()
    (out / "earlier.parquet").write_bytes(b"yesterday's output")

    result = spark_predict(spark_master, source, out, export_dir)
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert len(result.output.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["earlier.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "scored"]


def test_an_input_with_no_rows_is_named(
    spark_master: str, export_dir: Path, contract: Contract, tmp_path: Path
) -> None:
    source = tmp_path / "empty.csv"
    make_sample(contract, 5, seed=1).head(0).to_csv(source, index=False)
    result = spark_predict(spark_master, source, tmp_path / "out", export_dir)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {source}: no rows"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing model", "no metadata.json"),
        ("unreachable master", "is unreachable"),
        ("missing java", "has no bin/java"),
    ],
)
def test_what_stops_a_job_before_it_starts_is_one_line(
    case: str, expected: str, export_dir: Path, contract: Contract, tmp_path: Path
) -> None:
    """No cluster needed: these are checked before Spark starts."""
    source = tmp_path / "in.csv"
    make_sample(contract, 5, seed=1).to_csv(source, index=False)
    model = tmp_path / "no-model" if case == "missing model" else export_dir
    master = f"spark://127.0.0.1:{free_port()}" if case == "unreachable master" else "local[1]"
    env = {"JAVA_HOME": str(tmp_path)} if case == "missing java" else None
    options = ["--engine", "spark", "--master", master, "--model-dir", str(model)]
    result = predict(str(source), str(tmp_path / "out"), *options, env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert not (tmp_path / "out").exists()
