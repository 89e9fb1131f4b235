"""Behavioural tests of the trained model: invariance, direction, minimum functionality.

`risk` reads the same for every task kind the contract may declare: the probability of the
positive class, the expected grade index, or the predicted loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Params
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.features import split_table
from {{ cookiecutter.package_name }}.schema import Contract, TaskKind
from {{ cookiecutter.package_name }}.train import fit_model


def risk(model: Any, table: pd.DataFrame, contract: Contract) -> np.ndarray:
    features = contract.encode(table)
    if contract.target.kind is TaskKind.REGRESSION:
        return np.asarray(model.predict(features), dtype=float)
    assert contract.target.classes is not None
    probabilities = model.predict_proba(features)
    order = [list(contract.target.classes).index(c) for c in model.classes_]
    if contract.target.kind is TaskKind.BINARY:
        return np.asarray(probabilities[:, order.index(1)])
    return np.asarray(probabilities @ np.asarray(order, dtype=float))


@pytest.fixture(scope="module")
def fitted(contract: Contract, params: Params) -> tuple[Any, pd.DataFrame]:
    train, test = split_table(make_sample(contract, 2000, seed=11), contract, 0.2, seed=11)
    return fit_model(train, contract, params.model), test


def _applicant(**values: Any) -> pd.DataFrame:
    return pd.DataFrame([values])


def test_gender_does_not_change_the_prediction(
    fitted: tuple[Any, pd.DataFrame], contract: Contract
) -> None:
    model, test = fitted
    baseline = risk(model, test, contract)
    for gender in ("female", "male", "other"):
        assert np.array_equal(risk(model, test.assign(gender=gender), contract), baseline)


def test_a_larger_loan_for_the_same_income_does_not_lower_risk(
    fitted: tuple[Any, pd.DataFrame], contract: Contract
) -> None:
    model, test = fitted
    before = risk(model, test, contract)
    after = risk(model, test.assign(loan_amount=test["loan_amount"] * 3), contract)
    assert after.mean() > before.mean()
    assert (after >= before - 0.05 * np.ptp(before)).mean() > 0.95


def test_clear_cases_land_at_the_ends_of_the_risk_range(
    fitted: tuple[Any, pd.DataFrame], contract: Contract
) -> None:
    model, test = fitted
    population = risk(model, test, contract)
    safe = _applicant(
        age=55,
        annual_income=150_000.0,
        loan_amount=2_000.0,
        employment_type="salaried",
        owns_home=True,
    )
    risky = _applicant(
        age=22,
        annual_income=15_000.0,
        loan_amount=60_000.0,
        employment_type="unemployed",
        owns_home=False,
    )
    assert risk(model, safe, contract)[0] < np.quantile(population, 0.1)
    assert risk(model, risky, contract)[0] > np.quantile(population, 0.9)
