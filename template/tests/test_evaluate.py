from __future__ import annotations

from pathlib import Path

import pytest
from support import TARGETS, contract_file_for

from {{ cookiecutter.package_name }}.config import METRICS_BY_KIND, Params
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.evaluate import (
    compute_metrics,
    fairness_report,
    fairness_violations,
    plot_data,
    predict,
    write_plots,
)
from {{ cookiecutter.package_name }}.features import split_table
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.train import fit_model

PLOTS = {
    "binary": {"roc", "precision_recall", "calibration", "confusion"},
    "multiclass": {"confusion"},
    "regression": {"residuals", "predicted_vs_actual"},
}
GAPS = {
    "binary": {"demographic_parity_difference", "equalized_odds_difference"},
    "multiclass": {"accuracy_difference"},
    "regression": {"relative_mae_difference"},
}


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_metrics_plots_and_fairness_per_task_kind(
    kind: str, params: Params, tmp_path: Path
) -> None:
    contract = Contract.load(contract_file_for(kind, tmp_path))
    train, test = split_table(make_sample(contract, 800, seed=1), contract, 0.25, seed=1)
    predictions = predict(fit_model(train, contract, params.model), test, contract, 0.5)

    metrics = compute_metrics(predictions, contract)
    assert set(metrics) == METRICS_BY_KIND[contract.target.kind]
    for name, value in metrics.items():  # what permutation importance asks for
        assert compute_metrics(predictions, contract, only=name) == {name: value}

    plots = plot_data(predictions, contract)
    assert set(plots) == PLOTS[kind]
    write_plots(plots, tmp_path / "plots")
    assert {p.stem for p in (tmp_path / "plots").glob("*.json")} == PLOTS[kind]

    fairness = fairness_report(predictions, test, contract, params.fairness)
    assert set(fairness["gender"]["gaps"]) == GAPS[kind]
    assert sum(fairness["gender"]["group_sizes"].values()) == len(test)


def test_the_sample_signal_is_learned(binary_contract: Contract, params: Params) -> None:
    contract = binary_contract
    train, test = split_table(make_sample(contract, 2000, seed=1), contract, 0.25, seed=1)
    predictions = predict(fit_model(train, contract, params.model), test, contract, 0.5)
    assert compute_metrics(predictions, contract)["roc_auc"] > 0.8


def test_small_groups_are_reported_but_not_gated(contract: Contract, params: Params) -> None:
    train, test = split_table(make_sample(contract, 600, seed=1), contract, 0.25, seed=1)
    predictions = predict(fit_model(train, contract, params.model), test, contract, 0.5)
    fairness = fairness_report(predictions, test, contract, params.fairness)
    assert "other" in fairness["gender"]["not_gated"]
    assert "other" not in fairness["gender"]["by_group"]


def test_fairness_violations_name_the_attribute_and_gap() -> None:
    report = {"gender": {"gaps": {"equalized_odds_difference": 0.4}}}
    assert fairness_violations(report, {"equalized_odds_difference": 0.25}) == [
        "gender: equalized_odds_difference 0.400 > 0.25"
    ]
