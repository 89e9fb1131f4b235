"""Reading and writing tables, and the synthetic sample data set for a first run.

The sample has a known, learnable signal (risk grows with loan size relative to income and
falls with age and home ownership), missing values, class imbalance and a sensitive
attribute that plays no part in the outcome, so every stage has something real to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .schema import Contract, TaskKind

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

    table = pd.DataFrame(
        {
            "age": age,
            "annual_income": income_column,
            "loan_amount": loan,
            "employment_type": employment,
            "owns_home": owns_home,
            "gender": gender,
        }
    )
    if contract.id is not None:
        table.insert(0, contract.id, np.arange(first_id, first_id + rows))
    # Personal data a real credit table holds, which the model never sees; drawn from a
    # generator of its own so the other columns stay what they were for the same seed.
    table["email"] = _emails(np.random.default_rng([seed, first_id]), rows)
    table[contract.target.name] = _target(contract, risk, loan, rng)
    return table[contract.columns]


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
