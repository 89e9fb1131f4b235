from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support import TARGETS, contract_file_for

from {{ cookiecutter.package_name }}.data import DataError, make_sample, read_table, write_table
from {{ cookiecutter.package_name }}.schema import Contract


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
