"""`validate --engine spark`: the contract's suite on a Spark DataFrame gives the verdicts and
messages the pandas run gives, on a standalone cluster."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Params
from {{ cookiecutter.package_name }}.data import DataError, make_sample, read_table
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.spark.validation import validate_on_spark
from {{ cookiecutter.package_name }}.validation import ValidationReport, validate_table


def broken(table: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Out-of-range values, an unknown category, and missing values where none may be."""
    table = table.copy()
    numeric = next(c for c in contract.features if c.max is not None)
    categorical = next(c for c in contract.features if c.categories is not None)
    required = next(c for c in contract.described if not c.nullable and c.name != numeric.name)
    table.loc[:9, numeric.name] = numeric.max + 5
    table[categorical.name] = table[categorical.name].astype(object)
    table.loc[20:24, categorical.name] = "no such category"
    table[required.name] = table[required.name].astype(object)
    table.loc[30:31, required.name] = None
    return table


def outcome(report: ValidationReport) -> list[tuple[str, str | None, bool]]:
    return [(check.expectation, check.column, check.success) for check in report.checks]


@pytest.mark.parametrize("case", ["valid", "broken"])
def test_spark_gives_the_verdicts_and_messages_of_pandas(
    case: str, spark_master: str, contract: Contract, params: Params, tmp_path: Path
) -> None:
    table = make_sample(contract, params.validation.min_rows + 100, seed=31)
    if case == "broken":
        table = broken(table, contract)
    path = tmp_path / "raw.csv"
    table.to_csv(path, index=False)

    local = validate_table(read_table(path), contract, params.validation, str(path))
    spark = validate_on_spark(str(path), contract, params.validation, spark_master)
    assert local.success is (case == "valid")
    assert spark.success is local.success
    assert spark.rows == local.rows
    assert outcome(spark) == outcome(local)
    # The same words, but a type check names the engine's types (LongType, not int64).
    same_words = [c.message for c in local.checks if not c.expectation.endswith("_type_list")]
    assert [
        c.message for c in spark.checks if not c.expectation.endswith("_type_list")
    ] == same_words


def test_a_table_with_no_rows_is_named(
    spark_master: str, contract: Contract, params: Params, tmp_path: Path
) -> None:
    path = tmp_path / "raw.csv"
    make_sample(contract, 5, seed=1).head(0).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"raw\.csv: no rows"):
        validate_on_spark(str(path), contract, params.validation, spark_master)
