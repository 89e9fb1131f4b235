"""Linear models' contributions add up to their own raw output, for each task kind (the tree
models' are checked against the served model in tests/serving/test_explain.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from support import TARGETS, contract_file_for

from {{ cookiecutter.package_name }}.config import ModelType, Params
from {{ cookiecutter.package_name }}.contributions import LINEAR_METHOD, linear_explainer, reference_record
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.features import features_and_target, split_table
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.train import build_model, fit_model


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_linear_contributions_add_up(kind: str, params: Params, tmp_path: Path) -> None:
    contract = Contract.load(contract_file_for(kind, tmp_path))
    train, test = split_table(make_sample(contract, 400, seed=4), contract, 0.25, seed=4)
    linear = params.model.model_copy(update={"type": ModelType.LINEAR})
    model = fit_model(train, contract, linear)
    matrix, _ = features_and_target(test, contract)
    matrix[::5, :] = np.nan  # imputed values contribute too

    explainer = linear_explainer(model)
    assert explainer is not None
    assert explainer.method == LINEAR_METHOD
    explanation = explainer.explain(matrix)

    raw = model.predict(matrix) if kind == "regression" else model.decision_function(matrix)
    raw = np.asarray(raw).reshape(len(matrix), -1)
    assert explanation.contributions.shape == (len(matrix), raw.shape[1], len(contract.features))
    assert np.abs(explanation.raw_outputs - raw).max() <= 1e-6 * max(1.0, np.abs(raw).max())
    # The base value is the model's output for the reference record, where nothing moves.
    reference = reference_record(model.steps[0][1])[None, :]
    at_reference = explainer.explain(reference)
    assert np.abs(at_reference.contributions).max() <= 1e-12
    assert np.allclose(at_reference.raw_outputs[0], explainer.base_values)


def test_other_models_have_no_linear_explainer(params: Params, contract: Contract) -> None:
    boosting = build_model(contract, params.model)  # what it is decides, not what it learnt
    assert linear_explainer(boosting) is None
    assert linear_explainer(Pipeline([("model", boosting)])) is None
