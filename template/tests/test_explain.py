"""The global explanation: permutation importance on the gate's metric, for the model card."""

from __future__ import annotations

from pathlib import Path

from support import contract_file_for

from {{ cookiecutter.package_name }}.config import LOWER_IS_BETTER, ModelType, Params
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.explain import global_explanation, importance_table
from {{ cookiecutter.package_name }}.features import split_table
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.train import fit_model


def test_permutation_importance_on_the_gate_metric(params: Params, tmp_path: Path) -> None:
    # Regression and the linear model: the cheapest fit and metrics; the code is the same
    # for every model and task kind, which only predict and score.
    contract = Contract.load(contract_file_for("regression", tmp_path))
    train, test = split_table(make_sample(contract, 400, seed=3), contract, 0.25, seed=3)
    linear = params.model.model_copy(update={"type": ModelType.LINEAR})
    model = fit_model(train, contract, linear)
    constant = contract.features[-1].name
    test[constant] = test[constant].iloc[0]  # shuffling a constant column changes nothing

    explanation = global_explanation(model, test, contract, params)

    metric = params.promotion.regression.primary_metric
    assert metric in LOWER_IS_BETTER  # so a feature that matters makes it larger: importance > 0
    assert (explanation["metric"], explanation["rows"]) == (metric, len(test))
    ranked = explanation["features"]
    assert sorted(entry["feature"] for entry in ranked) == sorted(contract.feature_names)
    importances = [entry["importance"] for entry in ranked]
    assert importances == sorted(importances, reverse=True)
    assert importances[0] > 0
    assert {"feature": constant, "importance": 0.0, "std": 0.0} in ranked

    table = importance_table(explanation, top=2).splitlines()
    assert table[0] == f"| feature | {metric} worse by, shuffled | spread (std) |"
    assert len(table) == 4
    assert table[2].startswith(f"| {ranked[0]['feature']} | ")
