"""`infer-schema`: the draft it writes, what it prints, what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import load_params
from {{ cookiecutter.package_name }}.infer import InferError, infer_contract
from {{ cookiecutter.package_name }}.schema import Contract, TaskKind
from {{ cookiecutter.package_name }}.validation import validate_table


def _table(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + rows),
            "tenure_months": rng.integers(1, 120, size=rows),
            "monthly_spend": pd.Series(rng.uniform(10, 200, size=rows)).mask(
                rng.random(rows) < 0.1
            ),
            "plan": rng.choice(["basic", "plus", "pro"], size=rows),
            "autopay": rng.random(rows) < 0.5,
            "contact": [f"user{i}@example.com" for i in range(rows)],
            "phone": [f"+44 20 7946 {i:04d}" for i in range(rows)],
            "note": [f"called on day {i}" for i in range(rows)],
            "opened": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(rows)],
            "churned": rng.choice(["no", "yes"], size=rows),
        }
    )


def _draft(table: pd.DataFrame, target: str = "churned", **options: Any) -> Any:
    return infer_contract(table, target, min_rows=500, max_null_fraction=0.3, **options)


def test_each_column_gets_its_type_range_and_role() -> None:
    draft = _draft(_table())
    contract = Contract.model_validate(draft.contract)
    assert contract.id == "customer_id"
    assert contract.target.kind is TaskKind.BINARY
    assert contract.target.classes == ("no", "yes")
    tenure = contract.column("tenure_months")
    assert (tenure.type, tenure.nullable) == ("integer", False)
    # Seen 1 to 119: widened by a tenth of the width, and never below zero.
    assert (tenure.min, tenure.max) == (0, 131)
    spend = contract.column("monthly_spend")
    assert (spend.type, spend.nullable) == ("numeric", True)
    assert contract.column("plan").categories == ("basic", "plus", "pro")
    assert contract.column("autopay").type == "boolean"
    assert contract.feature_names == ["tenure_months", "monthly_spend", "plan", "autopay"]
    others = {c.name: c for c in contract.other}
    assert others["contact"].pii
    assert others["phone"].pii
    assert (others["note"].type, others["note"].pii) == ("text", False)
    assert (others["opened"].type, others["opened"].pii) == ("text", False)  # dates, no phone
    low, high = draft.validation["mean_bounds"]["monthly_spend"]
    assert low < 105 < high
    assert draft.validation["min_rows"] == 200  # 400 rows, under the 500 asked: half of them


def test_the_draft_validates_the_table_it_was_read_from(params: Any) -> None:
    table = _table(600)
    draft = _draft(table)
    settings = params.validation.model_copy(update=draft.validation)
    report = validate_table(table, Contract.model_validate(draft.contract), settings, "t")
    assert report.success, [c for c in report.checks if not c.success]


@pytest.mark.parametrize(
    ("target", "values", "task", "expected"),
    [
        ("y", [0.5, 1.25, 3.0, 2.5] * 10, None, {"kind": "regression", "min": 0}),
        ("y", [-1.5, 1.25, 3.0, 2.5] * 10, None, {"kind": "regression"}),
        ("y", [1, 2, 3, 1] * 10, None, {"kind": "multiclass", "classes": [1, 2, 3]}),
        ("y", [1, 2, 3, 1] * 10, "regression", {"kind": "regression", "min": 0}),
        ("y", [True, False] * 20, None, {"kind": "binary", "classes": [0, 1]}),
        ("y", ["b", "a", "c"] * 10, None, {"kind": "multiclass", "classes": ["a", "b", "c"]}),
    ],
)
def test_the_task_kind_follows_the_target(
    target: str, values: list[Any], task: str | None, expected: dict[str, Any]
) -> None:
    table = pd.DataFrame({"x": np.arange(len(values), dtype=float), target: values})
    draft = _draft(table, target, task=TaskKind(task) if task else None)
    assert draft.contract["target"] == {"name": target, **expected}


@pytest.mark.parametrize(
    ("table", "options", "message"),
    [
        (pd.DataFrame({"x": [], "y": []}), {}, "the table has no rows"),
        (pd.DataFrame({"x": [1.0], "y": [1]}), {"target": "label"}, "no target column 'label'"),
        (pd.DataFrame({"x": [1.0, 2.0], "y": [1, 1]}), {}, "target 'y' has one value"),
        (pd.DataFrame({"x": [1.0, 2.0], "y": [1, None]}), {}, "missing in 1 of 2 rows"),
        (
            pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]}),
            {"task": TaskKind.REGRESSION},
            "holds labels, not numbers",
        ),
        (pd.DataFrame({"_x": [1.0, 2.0], "y": [0, 1]}), {}, "'_x': a name may not start"),
        (pd.DataFrame({"columns": [1.0, 2.0], "y": [0, 1]}), {}, "'columns' is reserved"),
        (pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), {"id_column": "key"}, "no id column"),
        (pd.DataFrame({"x": [None, None], "y": [0, 1]}), {}, "column 'x' is empty in every row"),
        (
            pd.DataFrame({"x": pd.to_datetime(["2024-01-01", "2024-02-01"]), "y": [0, 1]}),
            {},
            "column 'x' holds dates",
        ),
    ],
)
def test_tables_a_contract_cannot_come_from_are_refused(
    table: pd.DataFrame, options: dict[str, Any], message: str
) -> None:
    target = options.pop("target", "y")
    with pytest.raises(InferError, match=message):
        _draft(table, target, **options)


def test_the_command_prints_what_it_writes_and_keeps_params_comments(
    make_project: Callable[..., Path],
) -> None:
    project = make_project()
    table_file = project / "mine.csv"
    _table().to_csv(table_file, index=False)
    contract_before = (project / "schema.yaml").read_text()
    refused = CliRunner().invoke(app, ["infer-schema", str(table_file), "--target", "churned"])
    assert refused.exit_code == 1
    assert "schema.yaml exists: pass --force" in refused.output
    assert (project / "schema.yaml").read_text() == contract_before

    (project / "params.yaml").write_text(
        (project / "params.yaml").read_text().replace("min_rows:", "min_rows:  # kept\n   ", 1)
    )
    done = CliRunner().invoke(
        app, ["infer-schema", str(table_file), "--target", "churned", "--force"]
    )
    assert done.exit_code == 0, done.output
    written = yaml.safe_load((project / "schema.yaml").read_text())
    lines = done.output.splitlines()
    for role, column in [("feature", c) for c in written["features"]] + [
        ("other", c) for c in written["other"]
    ]:
        said = ", ".join(f"{k}: {_shown(v)}" for k, v in column.items() if k != "name")
        assert any(line.split()[:2] == [role, column["name"]] and said in line for line in lines)
    params = load_params(project / "params.yaml")
    for name, bounds in params.validation.mean_bounds.items():
        assert any(f"mean_bounds.{name}" in line and str(list(bounds)) in line for line in lines)
    assert "# kept" in (project / "params.yaml").read_text()
    assert params.validation.min_rows == 100  # the table's 400 rows meet it: kept


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def test_import_data_puts_a_table_at_the_raw_path(make_project: Callable[..., Path]) -> None:
    project = make_project({"data": {"raw": "data/raw/table.parquet"}})
    _table(50).to_csv(project / "mine.csv", index=False)
    result = CliRunner().invoke(app, ["import-data", "mine.csv"])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(project / "data/raw/table.parquet").shape == (50, 10)
    missing = CliRunner().invoke(app, ["import-data", "absent.csv"])
    assert missing.exit_code == 1
    assert "absent.csv: data file not found" in missing.output
