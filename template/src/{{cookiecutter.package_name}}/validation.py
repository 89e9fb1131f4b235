"""The validate stage: a Great Expectations suite generated from the data contract.

Every rule comes from `schema.yaml` (columns, types, nullability, ranges, categories, id,
target) or `params.yaml` (row count, share of missing values, mean bounds), so the checks
cannot drift from the contract. Reports go to JSON (for machines) and Markdown (for people).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .config import ConfigError, ValidationParams
from .schema import Column, ColumnType, Contract, TaskKind

INTEGER_TYPES = ["int8", "int16", "int32", "int64", "Int8", "Int16", "Int32", "Int64"]
FLOAT_TYPES = ["float32", "float64", "Float32", "Float64"]
STRING_TYPES = ["str"]
BOOLEAN_TYPES = ["bool", "boolean", *INTEGER_TYPES]


@dataclass(frozen=True)
class TypeNames:
    """What the engine calls the contract's column types (GX checks the engine's own names)."""

    integer: list[str]
    floating: list[str]
    string: list[str]
    boolean: list[str]


PANDAS_TYPES = TypeNames(INTEGER_TYPES, FLOAT_TYPES, STRING_TYPES, BOOLEAN_TYPES)


@dataclass(frozen=True)
class CheckResult:
    expectation: str
    column: str | None
    success: bool
    observed: str
    message: str


@dataclass(frozen=True)
class ValidationReport:
    data: str
    rows: int
    success: bool
    checks: list[CheckResult]

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.success]


def build_expectations(
    contract: Contract, params: ValidationParams, types: TypeNames = PANDAS_TYPES
) -> list[Any]:
    """The contract and the validation parameters as a list of GX expectations, in check order."""
    import great_expectations.expectations as gxe

    unknown = sorted(set(params.mean_bounds) - {c.name for c in _numeric_columns(contract)})
    if unknown:
        raise ConfigError(
            f"validation.mean_bounds: {', '.join(unknown)}: not a numeric column of the contract"
        )
    expectations: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(column_set=contract.columns, exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=params.min_rows),
    ]
    if contract.id is not None:
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=contract.id),
            gxe.ExpectColumnValuesToBeUnique(column=contract.id),
        ]
    for column in contract.described:
        expectations += _column_expectations(column, params, types)
    expectations += _target_expectations(contract, types)
    for name, (low, high) in params.mean_bounds.items():
        expectations.append(
            gxe.ExpectColumnMeanToBeBetween(column=name, min_value=low, max_value=high)
        )
    return expectations


def _numeric_columns(contract: Contract) -> list[Column]:
    numeric = (ColumnType.NUMERIC, ColumnType.INTEGER)
    return [c for c in contract.described if c.type in numeric]


def _column_expectations(column: Column, params: ValidationParams, types: TypeNames) -> list[Any]:
    import great_expectations.expectations as gxe

    name = column.name
    expectations: list[Any] = []
    if column.type is ColumnType.NUMERIC:
        type_list = types.integer + types.floating
    elif column.type is ColumnType.INTEGER:
        # A missing value turns an integer column into floats when read from CSV.
        type_list = types.integer + (types.floating if column.nullable else [])
    elif column.type in (ColumnType.CATEGORICAL, ColumnType.TEXT):
        type_list = types.string
    else:
        type_list = types.boolean
    expectations.append(gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=type_list))
    if not column.nullable:
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=name))
    elif params.max_null_fraction < 1:
        expectations.append(
            gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=1 - params.max_null_fraction)
        )
    if column.min is not None or column.max is not None:
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=name, min_value=column.min, max_value=column.max
            )
        )
    if column.categories is not None:
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(column=name, value_set=list(column.categories))
        )
    if column.type is ColumnType.BOOLEAN:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=[True, False]))
    if column.pattern is not None:
        expectations.append(gxe.ExpectColumnValuesToMatchRegex(column=name, regex=column.pattern))
    return expectations


def _target_expectations(contract: Contract, types: TypeNames) -> list[Any]:
    import great_expectations.expectations as gxe

    target = contract.target
    expectations: list[Any] = [gxe.ExpectColumnValuesToNotBeNull(column=target.name)]
    if target.kind is TaskKind.REGRESSION:
        expectations.append(
            gxe.ExpectColumnValuesToBeInTypeList(
                column=target.name, type_list=types.integer + types.floating
            )
        )
        if target.min is not None or target.max is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=target.name, min_value=target.min, max_value=target.max
                )
            )
    else:
        assert target.classes is not None
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(column=target.name, value_set=list(target.classes))
        )
    return expectations


def validate_table(
    table: pd.DataFrame, contract: Contract, params: ValidationParams, source: str
) -> ValidationReport:
    expectations = build_expectations(contract, params)
    frame = _with_object_strings(table)
    columns = list(table.columns)
    return run_suite("pandas", frame, len(table), columns, expectations, contract, source)


def run_suite(
    engine: str,
    frame: Any,
    rows: int,
    columns: list[str],
    expectations: list[Any],
    contract: Contract,
    source: str,
) -> ValidationReport:
    """The suite on `frame`, a DataFrame of GX's `engine` data source (pandas or spark)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    sources = context.data_sources
    add_source = sources.add_spark if engine == "spark" else sources.add_pandas
    batch = (
        add_source("raw")
        .add_dataframe_asset("table")
        .add_batch_definition_whole_dataframe("whole_table")
    )
    # The suite is stored whole: added one by one, each expectation re-saves the suite so far
    # (0.2 s of a 0.5 s validation with 30 expectations).
    suite = context.suites.add(gx.ExpectationSuite(name="contract", expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="contract", data=batch, suite=suite)
    )
    run = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    order = {expectation.id: i for i, expectation in enumerate(suite.expectations)}
    results = sorted(run.results, key=lambda result: order.get(_expectation_id(result), len(order)))
    checks = [_check(result, contract.pii) for result in results]
    return ValidationReport(
        data=source,
        rows=rows,
        success=all(check.success for check in checks),
        checks=_drop_consequential_failures(checks, set(columns)),
    )


def _expectation_id(result: Any) -> str | None:
    config = result.expectation_config
    return None if config is None else str(config.id)


def _with_object_strings(table: pd.DataFrame) -> pd.DataFrame:
    """GX 1.x does not recognise pandas 3's default `str` dtype in type checks: hand it
    text columns as `object`, which it checks value by value."""
    text = [name for name, dtype in table.dtypes.items() if isinstance(dtype, pd.StringDtype)]
    return table.astype(dict.fromkeys(text, object)) if text else table


def _check(result: Any, pii: tuple[str, ...]) -> CheckResult:
    config = result.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column")
    observed = _observed(config.type, kwargs, result.result, shown=column not in pii)
    where = f"column {column!r}" if column else "table"
    message = "" if result.success else f"{where}: {config.type} failed: {observed}"
    return CheckResult(config.type, column, bool(result.success), observed, message)


def _observed(kind: str, kwargs: dict[str, Any], result: dict[str, Any], shown: bool) -> str:
    """What a check saw; a personal-data column's values are never shown (`shown` False)."""
    if not result:
        return "could not be checked on this column"
    if kind == "expect_table_columns_to_match_set":
        mismatched = result.get("details", {}).get("mismatched", {})
        missing, extra = mismatched.get("missing", []), mismatched.get("unexpected", [])
        parts = [f"missing {missing}"] if missing else []
        parts += [f"unexpected {extra}"] if extra else []
        return ", ".join(parts) or f"columns {result.get('observed_value')}"
    count = result.get("unexpected_count", 0)
    total = result.get("element_count", 0)
    examples: Any = [_plain(v) for v in result.get("partial_unexpected_list", [])[:5]]
    if not shown:
        examples = "(values not shown: personal data)"
    if kind == "expect_column_values_to_be_in_type_list":
        expected = f"expected one of {kwargs['type_list']}"
        if "observed_value" in result:
            return f"type {result['observed_value']!r}, {expected}"
        return f"{count} of {total} values of another type, e.g. {examples}, {expected}"
    if "observed_value" in result:
        bounds = f"[{kwargs.get('min_value')}, {kwargs.get('max_value')}]"
        return f"{_plain(result['observed_value'])} (expected within {bounds})"
    if kind == "expect_column_values_to_not_be_null":
        allowed = kwargs.get("mostly", 1.0)
        return f"{count} of {total} values missing (allowed share {1 - allowed:.2f})"
    return f"{count} of {total} values unexpected, e.g. {examples}"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _drop_consequential_failures(checks: list[CheckResult], present: set[str]) -> list[CheckResult]:
    """Keep a failure that follows from an earlier one (missing column, wrong type) out of
    the messages: one cause, one line."""
    wrong_type = {
        c.column for c in checks if not c.success and c.expectation.endswith("_in_type_list")
    }
    kept = []
    for check in checks:
        follows = check.column is not None and (
            check.column not in present
            or (check.column in wrong_type and not check.expectation.endswith("_in_type_list"))
        )
        if not (follows and not check.success):
            kept.append(check)
    return kept


def write_reports(report: ValidationReport, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    payload = asdict(report)
    (directory / "validation.json").write_text(json.dumps(payload, indent=2) + "\n")
    status = "passed" if report.success else "FAILED"
    lines = [
        "# Data validation",
        "",
        f"`{report.data}`: {report.rows} rows, {len(report.checks)} checks, {status}.",
        "",
        "| | check | column | observed |",
        "|---|---|---|---|",
    ]
    for check in report.checks:
        mark = "ok" if check.success else "**FAIL**"
        observed = check.observed.replace("|", "\\|")
        lines.append(f"| {mark} | {check.expectation} | {check.column or ''} | {observed} |")
    (directory / "validation.md").write_text("\n".join(lines) + "\n")


def failure_message(report: ValidationReport) -> str:
    failures = report.failures
    head = f"{report.data}: {len(failures)} check(s) failed"
    return "\n".join([head, *(f"  - {check.message}" for check in failures)])


def quiet_great_expectations() -> None:
    """GX logs at INFO and WARNING for routine events; the report says what matters."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
