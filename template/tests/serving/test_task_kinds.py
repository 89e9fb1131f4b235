"""The template renders binary, multiclass or regression targets: serving handles all three."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.model_store import LoadedModel

from .conftest import CONTRACT
from .synthetic_export import synthetic_rows

TARGETS = {
    "binary": {"name": "default", "kind": "binary", "classes": [0, 1]},
    "multiclass": {"name": "risk_grade", "kind": "multiclass", "classes": ["A", "B", "C", "D"]},
    "regression": {"name": "loss_amount", "kind": "regression", "min": 0},
}


@pytest.mark.parametrize("kind", TARGETS)
def test_predictions_serialise_for_every_task_kind(kind: str) -> None:
    document = yaml.safe_load(CONTRACT.read_text())
    contract = Contract.model_validate({**document, "target": TARGETS[kind]})
    matrix = contract.encode(synthetic_rows(contract, 200, seed=1))
    estimator: Any
    if contract.target.classes is not None:
        labels = np.resize(np.asarray(contract.target.classes), len(matrix))
        estimator = HistGradientBoostingClassifier(max_iter=5).fit(matrix, labels)
        classes = np.asarray(estimator.classes_).tolist()
    else:
        estimator = HistGradientBoostingRegressor(max_iter=5).fit(matrix, matrix[:, 0])
        classes = None
    model = LoadedModel(estimator, contract, {"version": "1"}, classes)

    result = model.predict(matrix[:3])

    payload = orjson.loads(
        orjson.dumps(
            {"predictions": result.predictions.tolist(), "probabilities": result.probabilities},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
    )
    assert len(payload["predictions"]) == 3
    if classes is None:
        assert payload["probabilities"] is None
    else:
        assert len(payload["probabilities"][0]) == len(classes)
        assert set(payload["predictions"]) <= set(classes)
