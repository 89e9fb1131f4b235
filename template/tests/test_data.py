from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support import TARGETS, contract_file_for

from {{ cookiecutter.package_name }}.config import Params
from {{ cookiecutter.package_name }}.data import DataError, make_sample, read_table, write_table
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.validation import validate_table


def test_sample_is_deterministic_and_follows_the_contract(contract: Contract) -> None:
    first, second = make_sample(contract, 300, seed=1), make_sample(contract, 300, seed=1)
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == contract.columns
    assert first[contract.id].is_unique


def test_sample_has_missing_values_imbalance_and_signal(binary_contract: Contract) -> None:
    table = make_sample(binary_contract, 3000, seed=3)
    assert table["annual_income"].isna().any()
    assert table["employment_type"].isna().any()
    default_rate = table["default"].mean()
    assert 0.1 < default_rate < 0.35
    ratio = table["loan_amount"] / table["annual_income"]
    high = table.loc[ratio > ratio.quantile(0.8), "default"].mean()
    low = table.loc[ratio < ratio.quantile(0.2), "default"].mean()
    assert high > low + 0.2


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_sample_target_follows_the_task_kind(kind: str, tmp_path: Path) -> None:
    contract = Contract.load(contract_file_for(kind, tmp_path))
    target = make_sample(contract, 400, seed=2)[contract.target.name]
    if contract.target.classes is None:
        assert (target >= 0).all()
    else:
        assert set(target) == set(contract.target.classes)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tables_round_trip_by_extension(suffix: str, contract: Contract, tmp_path: Path) -> None:
    table = make_sample(contract, 50, seed=4)
    path = tmp_path / "nested" / f"table{suffix}"
    write_table(table, path)
    assert read_table(path).shape == table.shape


def test_missing_empty_and_unknown_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "table.xlsx").write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        read_table(tmp_path / "table.xlsx")


def test_the_sample_makes_every_column_the_contract_adds(
    contract: Contract, params: Params, tmp_path: Path
) -> None:
    raw = contract.model_dump()
    raw["features"] = [f for f in raw["features"] if f["name"] != "age"] + [
        {"name": "team_score", "type": "numeric", "min": 0, "max": 100, "nullable": True},
        {"name": "visits", "type": "integer", "min": 1, "max": 12},
        {"name": "channel", "type": "categorical", "categories": ["web", "branch"]},
        {"name": "has_guarantor", "type": "boolean", "nullable": True},
        # The sample's own column, narrowed: made from the contract, not the credit story.
        {"name": "age", "type": "integer", "min": 30, "max": 40},
    ]
    raw["other"] = [*raw["other"], {"name": "phone", "type": "text", "pattern": r"^\+[0-9 ]+$"}]
    grown = Contract.model_validate(raw)
    table = make_sample(grown, 600, seed=5)
    assert list(table.columns) == grown.columns
    assert table["age"].between(30, 40).all()
    assert table["team_score"].isna().any()
    assert set(table["channel"]) == {"web", "branch"}
    report = validate_table(table, grown, params.validation.model_copy(update={"min_rows": 1}), "t")
    assert report.success, [c.message for c in report.checks if not c.success]
    # The credit columns stay what they were for the same seed.
    pd.testing.assert_series_equal(
        table["loan_amount"], make_sample(contract, 600, seed=5)["loan_amount"]
    )


def test_a_column_the_sample_cannot_make_is_named(contract: Contract) -> None:
    raw = contract.model_dump()
    iban = "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"
    raw["other"] = [*raw["other"], {"name": "iban", "type": "text", "pattern": iban}]
    with pytest.raises(DataError, match="column 'iban': the sample generator cannot make text"):
        make_sample(Contract.model_validate(raw), 10, seed=1)
