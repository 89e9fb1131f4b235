"""Reading and writing tables, and the synthetic sample data set for a first run.

The sample has a known, learnable signal (risk grows with loan size relative to income and
falls with age and home ownership), missing values, class imbalance and a sensitive
attribute that plays no part in the outcome, so every stage has something real to do.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .schema import Column, ColumnType, Contract, TaskKind

EMPLOYMENT_RISK = {
    "salaried": 0.0,
    "self_employed": 0.5,
    "contractor": 0.7,
    "unemployed": 2.0,
    "retired": 0.3,
}

FIRST_NAMES = ("ana", "ben", "chloe", "david", "emma", "farid", "grace", "hugo", "ines", "jonas")
LAST_NAMES = ("garcia", "hughes", "ivanova", "jensen", "kowalski", "larsen", "moreau", "novak")


class DataError(ValueError):
    """A data file is missing, empty or unreadable."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a .csv or .parquet file, with a clear message when it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: data file is empty")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        try:
            return pd.read_csv(path)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: data file has no header and no rows") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: not a readable CSV file: {exc}") from None
    raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)")


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)")


def make_sample(
    contract: Contract, rows: int, seed: int, *, loan_scale: float = 1.0, first_id: int = 1
) -> pd.DataFrame:
    """A synthetic credit table in the contract's column order, the target of its task kind.

    `loan_scale` moves the loan amounts (a covariate drift whose outcomes still follow the same
    risk); `first_id` starts the ids, so later batches do not collide with earlier ones.
    """
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, size=rows)
    income = np.round(rng.lognormal(mean=np.log(45_000), sigma=0.5, size=rows), 2)
    loan_median = 12_000 * loan_scale
    loan = np.clip(np.round(rng.lognormal(np.log(loan_median), 0.8, size=rows), 2), 500, 1_000_000)
    employment = rng.choice(
        list(EMPLOYMENT_RISK), size=rows, p=[0.55, 0.15, 0.12, 0.08, 0.10]
    ).astype(object)
    owns_home = rng.random(rows) < 0.4
    gender = rng.choice(["female", "male", "other"], size=rows, p=[0.47, 0.47, 0.06])

    income_missing = rng.random(rows) < 0.08
    risk = (
        0.4
        + 1.8 * np.log(loan / income)
        + np.array([EMPLOYMENT_RISK[e] for e in employment])
        - 0.04 * (age - 40)
        - 0.9 * owns_home
        + 0.5 * income_missing
        + rng.normal(0, 0.3, size=rows)
    )
    income_column = np.where(income_missing, np.nan, income)
    employment[rng.random(rows) < 0.05] = None

    credit = {
        "age": age,
        "annual_income": income_column,
        "loan_amount": loan,
        "employment_type": employment,
        "owns_home": owns_home,
        "gender": gender,
    }
    table = pd.DataFrame(index=pd.RangeIndex(rows))
    if contract.id is not None:
        table[contract.id] = np.arange(first_id, first_id + rows)
    # Columns the contract adds (a new feature...) come from their type and range, each from a
    # generator of its own, so the credit columns stay what they were for the same seed.
    for position, column in enumerate(contract.described):
        if column.name in credit and _fits(column, credit[column.name]):
            table[column.name] = credit[column.name]
        elif column.name == "email" and column.pattern == EMAIL_PATTERN:
            # Personal data a real credit table holds, which the model never sees.
            table[column.name] = _emails(np.random.default_rng([seed, first_id]), rows)
        else:
            own = np.random.default_rng([seed, first_id, position + 1])
            table[column.name] = _from_contract(column, own, rows)
    table[contract.target.name] = _target(contract, risk, loan, rng)
    return table[contract.columns]


EMAIL_PATTERN = r"^[^@ ]+@[^@ ]+\.[A-Za-z]{2,}$"


def _fits(column: Column, values: np.ndarray) -> bool:
    """Whether the sample's own column meets the contract's rules for it (else: generated)."""
    present = pd.Series(values).dropna()
    if column.type is ColumnType.CATEGORICAL:
        return set(present) <= set(column.categories or ())
    if column.type is ColumnType.BOOLEAN:
        return values.dtype == bool
    if column.type not in (ColumnType.NUMERIC, ColumnType.INTEGER):
        return False
    if column.type is ColumnType.INTEGER and not np.issubdtype(values.dtype, np.integer):
        return False
    low = -math.inf if column.min is None else column.min
    high = math.inf if column.max is None else column.max
    whole = column.nullable or len(present) == len(values)
    return whole and bool(present.between(low, high).all())


def _from_contract(column: Column, rng: np.random.Generator, rows: int) -> Any:
    """Values of a column drawn from its contract: its range, its categories, its pattern."""
    if column.type is ColumnType.CATEGORICAL:
        values: Any = rng.choice(np.asarray(column.categories, dtype=object), size=rows)
    elif column.type is ColumnType.BOOLEAN:
        values = rng.random(rows) < 0.5
    elif column.type is ColumnType.TEXT:
        values = _text(column, rng, rows)
    else:
        # An open side gets 100 units of room: enough for a sample, and in the contract.
        low = column.min if column.min is not None else min(0.0, (column.max or 0.0) - 100)
        high = column.max if column.max is not None else low + 100
        if column.type is ColumnType.INTEGER:
            values = rng.integers(math.ceil(low), math.floor(high) + 1, size=rows)
        else:
            values = np.round(rng.uniform(low, high, size=rows), 4)
    if column.nullable and column.type is not ColumnType.BOOLEAN:
        # Some missing values, as a nullable column has (booleans stay whole: a CSV file
        # cannot keep a missing value in a true/false column).
        values = pd.Series(values, dtype=float if column.type is ColumnType.NUMERIC else object)
        values[rng.random(rows) < 0.05] = None
    return values


def _text(column: Column, rng: np.random.Generator, rows: int) -> list[str]:
    """Text matching the column's pattern: an e-mail or a phone number, or refused by name."""
    candidates = (
        _emails(rng, rows),
        [f"+44 20 7946 {n:04d}" for n in rng.integers(0, 10_000, size=rows)],  # Ofcom's drama range
        [f"{column.name}-{n}" for n in rng.integers(0, 1_000_000, size=rows)],
    )
    for values in candidates:
        if column.pattern is None or all(re.fullmatch(column.pattern, v) for v in values):
            return values
    raise DataError(
        f"column {column.name!r}: the sample generator cannot make text matching "
        f"{column.pattern!r}; bring a table of your own (`make data SOURCE=...`)"
    )


def _emails(rng: np.random.Generator, rows: int) -> list[str]:
    """Made-up addresses at the domains reserved for examples (RFC 2606)."""
    first = rng.choice(FIRST_NAMES, size=rows)
    last = rng.choice(LAST_NAMES, size=rows)
    number = rng.integers(1, 10_000, size=rows)
    domain = rng.choice(["example.com", "example.org", "example.net"], size=rows)
    return [f"{f}.{n}{k}@{d}" for f, n, k, d in zip(first, last, number, domain, strict=True)]


def _target(
    contract: Contract, risk: np.ndarray, loan: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    probability = 1 / (1 + np.exp(-risk))
    target = contract.target
    if target.kind is TaskKind.REGRESSION:
        # Expected loss: the defaulted share of the loan, never negative.
        loss_given_default = rng.uniform(0.3, 0.9, size=risk.size)
        loss: np.ndarray = np.round(loan * probability * loss_given_default, 2)
        return loss
    assert target.classes is not None
    if target.kind is TaskKind.BINARY:
        return np.where(rng.random(risk.size) < probability, target.classes[1], target.classes[0])
    # Grades in contract order from lowest to highest risk, cut at quantiles of the risk.
    cuts = np.quantile(risk, np.linspace(0, 1, len(target.classes) + 1)[1:-1])
    grades: np.ndarray = np.asarray(target.classes, dtype=object)[np.searchsorted(cuts, risk)]
    return grades
