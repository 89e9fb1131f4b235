"""The global explanation of a trained model: permutation importance on the test set.

How much the promotion gate's primary metric gets worse when one feature's values are
shuffled among the test rows (scikit-learn's `permutation_importance`, seeded and repeated),
measured with the evaluate stage's own metrics. It needs nothing but the model's predictions,
so it is the same for every model type and task kind. The evaluate stage writes it to
`reports/explanations.json` and logs it with the run; the model card shows the top features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .config import LOWER_IS_BETTER, Params
from .evaluate import compute_metrics, predict_matrix
from .features import features_and_target
from .schema import Contract

EXPLANATIONS_FILE = "explanations.json"
# Shuffles per feature: the spread over them is reported beside the mean.
REPEATS = 5
TOP_FEATURES = 10


def global_explanation(
    model: Any, test: pd.DataFrame, contract: Contract, params: Params
) -> dict[str, Any]:
    """Each feature's permutation importance on the test rows, most important first."""
    # Imported here: the register stage imports this module for `importance_table` alone.
    from sklearn.inspection import permutation_importance

    metric = params.promotion.gate(contract.target.kind).primary_metric
    threshold = params.evaluate.threshold
    # scikit-learn maximises the score: a metric where lower is better is negated.
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0

    def score(estimator: Any, features: np.ndarray, actual: np.ndarray) -> float:
        predictions = predict_matrix(estimator, features, actual, contract, threshold)
        return sign * compute_metrics(predictions, contract, only=metric)[metric]

    features, actual = features_and_target(test, contract)
    result = permutation_importance(
        model,
        features,
        actual,
        scoring=score,
        n_repeats=REPEATS,
        random_state=params.model.seed,
        n_jobs=1,
    )
    ranked = sorted(
        zip(contract.feature_names, result.importances_mean, result.importances_std, strict=True),
        key=lambda entry: -entry[1],
    )
    return {
        "method": "permutation_importance",
        "metric": metric,
        "repeats": REPEATS,
        "rows": len(test),
        "features": [
            {"feature": name, "importance": round(float(mean), 6), "std": round(float(std), 6)}
            for name, mean, std in ranked
        ],
    }


def importance_table(explanation: dict[str, Any], top: int = TOP_FEATURES) -> str:
    """The top features as a Markdown table, for the model card."""
    rows = "\n".join(
        f"| {entry['feature']} | {entry['importance']:.4f} | {entry['std']:.4f} |"
        for entry in explanation["features"][:top]
    )
    metric = explanation["metric"]
    return f"| feature | {metric} worse by, shuffled | spread (std) |\n|---|---|---|\n{rows}"
