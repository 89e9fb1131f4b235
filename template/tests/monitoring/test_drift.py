"""The drift checks: verdicts on known shifts, and the streamed statistics against SciPy's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from {{ cookiecutter.package_name }}.config import DriftParams
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.monitoring.drift import FeatureDrift, compare
from {{ cookiecutter.package_name }}.schema import Column, ColumnType, Contract

PARAMS = DriftParams()


def chunks(table: pd.DataFrame, size: int = 700) -> list[pd.DataFrame]:
    return [table.iloc[start : start + size] for start in range(0, len(table), size)]


def by_name(results: list[FeatureDrift]) -> dict[str, FeatureDrift]:
    return {result.name: result for result in results}


@pytest.fixture(scope="module")
def reference(contract: Contract) -> pd.DataFrame:
    return make_sample(contract, 4000, seed=1)


def test_same_distribution_is_no_drift(contract: Contract, reference: pd.DataFrame) -> None:
    current = make_sample(contract, 3000, seed=2)
    results = compare(reference, chunks(current), contract.features, PARAMS)
    assert [r.name for r in results] == contract.feature_names
    assert [r.name for r in results if r.drifted] == []
    assert all(r.status == "ok" for r in results)


def test_drift_is_found_on_the_shifted_columns_only(
    contract: Contract, reference: pd.DataFrame
) -> None:
    current = make_sample(contract, 3000, seed=2)
    current["loan_amount"] *= 1.8
    current["employment_type"] = np.where(
        np.arange(len(current)) % 2 == 0, "unemployed", current["employment_type"]
    )
    results = by_name(compare(reference, chunks(current), contract.features, PARAMS))
    assert {name for name, r in results.items() if r.drifted} == {
        "loan_amount",
        "employment_type",
    }
    assert results["loan_amount"].checks["psi"]
    assert results["loan_amount"].checks["ks"]
    assert results["employment_type"].checks["chi2"]
    assert not results["employment_type"].checks["unseen_categories"]


def test_unseen_categories_are_their_own_check(contract: Contract, reference: pd.DataFrame) -> None:
    current = make_sample(contract, 1000, seed=3)
    current.loc[:49, "employment_type"] = "gig_worker"
    result = by_name(compare(reference, [current], contract.features, PARAMS))["employment_type"]
    assert result.statistics["unseen_share"] == pytest.approx(50 / current.employment_type.count())
    assert result.checks["unseen_categories"]
    assert result.drifted
    assert result.histogram.labels[-1] == "gig_worker"
    assert result.histogram.unseen[-1]


def test_a_change_in_missing_rate_is_drift(contract: Contract, reference: pd.DataFrame) -> None:
    current = make_sample(contract, 1000, seed=4)
    current.loc[:399, "annual_income"] = np.nan
    result = by_name(compare(reference, [current], contract.features, PARAMS))["annual_income"]
    assert result.statistics["missing_rate_reference"] == pytest.approx(0.08, abs=0.02)
    assert result.statistics["missing_rate_change"] > 0.3
    assert result.checks["missing_rate"]
    assert result.drifted


def test_a_column_gone_missing_is_drift(contract: Contract, reference: pd.DataFrame) -> None:
    current = make_sample(contract, 500, seed=8)
    current["loan_amount"] = np.nan
    current["employment_type"] = None
    results = by_name(compare(reference, [current], contract.features, PARAMS))
    for name in ("loan_amount", "employment_type"):
        assert results[name].status == "drift"
        assert results[name].checks["missing_rate"]
        assert results[name].statistics["missing_rate_current"] == 1


def test_too_few_rows_are_not_judged(contract: Contract, reference: pd.DataFrame) -> None:
    current = make_sample(contract, 1000, seed=5)
    current["loan_amount"] *= 3
    results = compare(reference, [current.head(PARAMS.min_rows - 1)], contract.features, PARAMS)
    assert {r.status for r in results} == {"too_few_rows"}
    empty = compare(reference, [], contract.features, PARAMS)
    assert {r.status for r in empty} == {"too_few_rows"}
    assert all(r.current_rows == 0 for r in empty)


def test_the_deciding_check_is_configurable(contract: Contract, reference: pd.DataFrame) -> None:
    current = make_sample(contract, 3000, seed=6)
    current["age"] += 2  # a small shift: KS is sure of it, PSI calls it minor
    ks = DriftParams(numeric_test="ks")
    assert by_name(compare(reference, [current], contract.features, ks))["age"].drifted
    assert not by_name(compare(reference, [current], contract.features, PARAMS))["age"].drifted


def test_streamed_numeric_statistics_equal_scipy() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 3000).round(2)})
    current = pd.DataFrame({"x": rng.normal(0.2, 1.3, 2500).round(3)})
    current.loc[::50, "x"] = np.nan
    column = Column(name="x", type=ColumnType.NUMERIC)
    result = compare(reference, chunks(current, 333), [column], PARAMS)[0]
    present = current["x"].dropna()
    expected = stats.ks_2samp(reference["x"], present, method="asymp")
    assert result.statistics["ks"] == pytest.approx(expected.statistic, abs=1e-12)
    assert result.statistics["ks_p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    distance = stats.wasserstein_distance(reference["x"], present) / reference["x"].std(ddof=0)
    assert result.statistics["wasserstein"] == pytest.approx(distance, rel=1e-2)
    assert result.statistics["missing_rate_current"] == pytest.approx(50 / 2500)


def test_wasserstein_is_exact_when_values_repeat() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"n": rng.integers(0, 30, 2000)})
    current = pd.DataFrame({"n": rng.integers(5, 40, 1500)})
    result = compare(reference, chunks(current), [Column(name="n", type="integer")], PARAMS)[0]
    distance = stats.wasserstein_distance(reference["n"], current["n"]) / reference["n"].std(ddof=0)
    assert result.statistics["wasserstein"] == pytest.approx(distance, rel=1e-12)


def test_streamed_categorical_statistics_equal_scipy() -> None:
    rng = np.random.default_rng(2)
    categories = ("a", "b", "c", "d")
    reference = pd.DataFrame({"c": rng.choice(categories, 3000, p=[0.4, 0.3, 0.2, 0.1])})
    current = pd.DataFrame({"c": rng.choice(categories, 2000, p=[0.3, 0.3, 0.25, 0.15])})
    column = Column(name="c", type=ColumnType.CATEGORICAL, categories=categories)
    result = compare(reference, chunks(current, 250), [column], PARAMS)[0]
    observed = current["c"].value_counts().reindex(list(categories)).to_numpy()
    shares = reference["c"].value_counts(normalize=True).reindex(list(categories)).to_numpy()
    expected = stats.chisquare(observed, shares * observed.sum())
    assert result.statistics["chi2"] == pytest.approx(expected.statistic, rel=1e-9)
    assert result.statistics["chi2_p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    distance = jensenshannon(shares, observed / observed.sum())
    assert result.statistics["jensen_shannon"] == pytest.approx(distance, rel=1e-9)


def test_booleans_are_compared_as_categories() -> None:
    reference = pd.DataFrame({"flag": [True, False] * 500})
    # The log reads booleans back as floats: 1.0 and 0.0 are the same categories.
    current = pd.DataFrame({"flag": [1.0] * 900 + [0.0] * 100})
    column = Column(name="flag", type=ColumnType.BOOLEAN)
    result = compare(reference, [current], [column], PARAMS)[0]
    assert result.histogram.labels == ["false", "true"]
    assert result.statistics["unseen_share"] == 0
    assert result.drifted


def test_a_column_missing_from_the_current_rows_is_named(contract: Contract) -> None:
    reference = make_sample(contract, 200, seed=1)
    with pytest.raises(ValueError, match="no column age"):
        compare(reference, [reference.drop(columns="age")], contract.features, PARAMS)
