"""Each kind of bad input: a clear message naming the column and the rule, exit code 1."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.schema import Contract

Corruption = Callable[[pd.DataFrame], pd.DataFrame]


def _validate(project: Path, table: pd.DataFrame | None) -> tuple[int, str]:
    raw = project / "data" / "raw" / "credit.csv"
    if table is not None:
        raw.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(raw, index=False)
    result = CliRunner().invoke(app, ["validate"])
    return result.exit_code, result.stderr


def test_valid_data_passes_and_writes_reports(
    make_project: Callable[..., Path], contract: Contract
) -> None:
    project = make_project()
    code, _ = _validate(project, make_sample(contract, 300, seed=5))
    assert code == 0
    report = json.loads((project / "reports" / "validation.json").read_text())
    assert report["success"]
    assert "passed" in (project / "reports" / "validation.md").read_text()


TARGET = "(target)"  # stands for the contract's target column, whatever the task kind


def _set(column: str, row: int, value: object) -> Corruption:
    def corrupt(table: pd.DataFrame) -> pd.DataFrame:
        column_name = table.columns[-1] if column == TARGET else column
        table = table.astype({column_name: object})
        table.loc[row, column_name] = value
        return table

    return corrupt


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (lambda t: t.drop(columns=["loan_amount"]), "missing ['loan_amount']"),
        (lambda t: t.assign(favourite_colour="blue"), "unexpected ['favourite_colour']"),
        (_set("age", 3, "forty"), "column 'age': expect_column_values_to_be_in_type_list"),
        (_set("employment_type", 3, "astronaut"), "['astronaut']"),
        (_set(TARGET, 3, None), "column '{target}': expect_column_values_to_not_be_null"),
        (_set("age", 3, 130), "column 'age': expect_column_values_to_be_between"),
        (_set("applicant_id", 3, 1), "column 'applicant_id': expect_column_values_to_be_unique"),
        (lambda t: t.head(20), "expect_table_row_count_to_be_between failed: 20"),
        (
            lambda t: t.assign(loan_amount=t["loan_amount"] * 100),
            "expect_column_mean_to_be_between",
        ),
    ],
    ids=[
        "missing-column",
        "extra-column",
        "wrong-type",
        "unknown-category",
        "nan-target",
        "out-of-range",
        "duplicate-id",
        "too-few-rows",
        "mean-out-of-bounds",
    ],
)
def test_bad_data_fails_with_a_clear_message(
    corrupt: Corruption, expected: str, make_project: Callable[..., Path], contract: Contract
) -> None:
    project = make_project()
    code, stderr = _validate(project, corrupt(make_sample(contract, 300, seed=5)))
    assert code == 1
    assert expected.replace("{target}", contract.target.name) in stderr
    assert "Traceback" not in stderr
    assert not json.loads((project / "reports" / "validation.json").read_text())["success"]


def test_missing_file(make_project: Callable[..., Path]) -> None:
    code, stderr = _validate(make_project(), None)
    assert code == 1
    assert "data/raw/credit.csv: data file not found" in stderr


def test_empty_file(make_project: Callable[..., Path]) -> None:
    project = make_project()
    raw = project / "data" / "raw" / "credit.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text("")
    code, stderr = _validate(project, None)
    assert code == 1
    assert "data file is empty" in stderr


def test_broken_params(make_project: Callable[..., Path]) -> None:
    project = make_project()
    (project / "params.yaml").write_text("data: {raw: x.csv}\n")
    code, stderr = _validate(project, None)
    assert code == 1
    assert "data.processed_dir: Field required" in stderr


def test_mean_bounds_on_an_unknown_column_is_a_config_error(
    make_project: Callable[..., Path], contract: Contract
) -> None:
    project = make_project({"validation": {"mean_bounds": {"shoe_size": [1, 2]}}})
    code, stderr = _validate(project, make_sample(contract, 300, seed=5))
    assert code == 1
    assert "validation.mean_bounds: shoe_size" in stderr


def test_personal_data_is_checked_but_never_shown(
    make_project: Callable[..., Path], contract: Contract
) -> None:
    project = make_project()
    table = make_sample(contract, 300, seed=5)
    table.loc[3, "email"] = "ana.garcia at example.com"
    code, stderr = _validate(project, table)
    assert code == 1
    assert "column 'email': expect_column_values_to_match_regex failed: 1 of 300" in stderr
    written = stderr + "".join(p.read_text() for p in (project / "reports").iterdir())
    assert not [email for email in table["email"] if email in written]
