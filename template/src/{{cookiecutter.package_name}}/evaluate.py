"""The evaluate stage: test-set metrics, DVC plot data and fairness by sensitive group.

`score` is also what the promotion gate uses to re-score the current champion, so both
models are measured the same way on the same rows. scikit-learn's metrics are imported in
the functions that compute them: the register stage imports this module and, without a
champion to re-score, needs none of them (scikit-learn takes about a second to import).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import FairnessParams
from .features import features_and_target
from .schema import Contract, TaskKind

MISSING_GROUP = "(missing)"


@dataclass(frozen=True)
class Predictions:
    actual: np.ndarray
    predicted: np.ndarray
    positive_probability: np.ndarray | None = None  # binary only
    probabilities: np.ndarray | None = None  # classification only
    classes: list[Any] | None = None


def predict(model: Any, table: pd.DataFrame, contract: Contract, threshold: float) -> Predictions:
    features, actual = features_and_target(table, contract)
    return predict_matrix(model, features, actual, contract, threshold)


def predict_matrix(
    model: Any, features: np.ndarray, actual: np.ndarray, contract: Contract, threshold: float
) -> Predictions:
    """`predict` on the encoded matrix (`features_and_target`)."""
    target = contract.target
    if target.kind is TaskKind.REGRESSION:
        return Predictions(actual=actual.astype(float), predicted=model.predict(features))
    probabilities = model.predict_proba(features)
    classes = list(model.classes_)
    if target.kind is TaskKind.BINARY:
        assert target.classes is not None
        positive = target.classes[-1]
        positive_probability = probabilities[:, classes.index(positive)]
        negative = target.classes[0]
        predicted = np.where(positive_probability >= threshold, positive, negative)
        return Predictions(actual, predicted, positive_probability, probabilities, classes)
    predicted = np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
    return Predictions(actual, predicted, None, probabilities, classes)


def score(
    model: Any, table: pd.DataFrame, contract: Contract, threshold: float
) -> dict[str, float]:
    return compute_metrics(predict(model, table, contract, threshold), contract)


def compute_metrics(
    predictions: Predictions, contract: Contract, only: str | None = None
) -> dict[str, float]:
    """The task kind's metrics, or only the one named (permutation importance asks for one
    metric some 30 times: computing the others too doubled its time)."""
    from sklearn import metrics as skm

    actual, predicted = predictions.actual, predictions.predicted
    kind = contract.target.kind
    values: dict[str, Callable[[], Any]]
    if kind is TaskKind.REGRESSION:
        values = {
            "rmse": partial(skm.root_mean_squared_error, actual, predicted),
            "mae": partial(skm.mean_absolute_error, actual, predicted),
            "r2": partial(skm.r2_score, actual, predicted),
        }
    elif kind is TaskKind.BINARY:
        assert contract.target.classes is not None
        assert predictions.positive_probability is not None
        is_positive = actual == contract.target.classes[-1]
        predicted_positive = predicted == contract.target.classes[-1]
        probability = predictions.positive_probability
        values = {
            "roc_auc": partial(skm.roc_auc_score, is_positive, probability),
            "pr_auc": partial(skm.average_precision_score, is_positive, probability),
            "f1": partial(skm.f1_score, is_positive, predicted_positive, zero_division=0),
            "precision": partial(
                skm.precision_score, is_positive, predicted_positive, zero_division=0
            ),
            "recall": partial(skm.recall_score, is_positive, predicted_positive, zero_division=0),
            "accuracy": partial(skm.accuracy_score, is_positive, predicted_positive),
        }
    else:
        assert predictions.probabilities is not None
        labels = predictions.classes
        values = {
            "f1_macro": partial(skm.f1_score, actual, predicted, average="macro", zero_division=0),
            "precision_macro": partial(
                skm.precision_score, actual, predicted, average="macro", zero_division=0
            ),
            "recall_macro": partial(
                skm.recall_score, actual, predicted, average="macro", zero_division=0
            ),
            "accuracy": partial(skm.accuracy_score, actual, predicted),
            "log_loss": partial(skm.log_loss, actual, predictions.probabilities, labels=labels),
            "roc_auc_ovr": partial(
                skm.roc_auc_score,
                actual,
                predictions.probabilities,
                multi_class="ovr",
                labels=labels,
            ),
        }
    return {
        name: round(float(metric()), 6)
        for name, metric in values.items()
        if only is None or name == only
    }


def plot_data(predictions: Predictions, contract: Contract) -> dict[str, list[dict[str, Any]]]:
    """Rows for DVC plots, one file each (see `plots:` in dvc.yaml)."""
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    actual, predicted = predictions.actual, predictions.predicted
    if contract.target.kind is TaskKind.REGRESSION:
        return {
            "predicted_vs_actual": [
                {"actual": float(a), "predicted": float(p)}
                for a, p in zip(actual, predicted, strict=True)
            ],
            "residuals": [
                {"predicted": float(p), "residual": float(a - p)}
                for a, p in zip(actual, predicted, strict=True)
            ],
        }
    plots: dict[str, list[dict[str, Any]]] = {
        "confusion": [
            {"actual": str(a), "predicted": str(p)} for a, p in zip(actual, predicted, strict=True)
        ]
    }
    if contract.target.kind is TaskKind.BINARY:
        assert contract.target.classes is not None
        assert predictions.positive_probability is not None
        is_positive = actual == contract.target.classes[-1]
        probability = predictions.positive_probability
        fpr, tpr, _ = skm.roc_curve(is_positive, probability)
        precision, recall, _ = skm.precision_recall_curve(is_positive, probability)
        fraction, mean_predicted = calibration_curve(is_positive, probability, n_bins=10)
        plots["roc"] = [{"fpr": float(f), "tpr": float(t)} for f, t in zip(fpr, tpr, strict=True)]
        plots["precision_recall"] = [
            {"recall": float(r), "precision": float(p)}
            for r, p in zip(recall, precision, strict=True)
        ]
        plots["calibration"] = [
            {"mean_predicted": float(m), "fraction_positive": float(f)}
            for m, f in zip(mean_predicted, fraction, strict=True)
        ]
    return plots


def fairness_report(
    predictions: Predictions, table: pd.DataFrame, contract: Contract, params: FairnessParams
) -> dict[str, Any]:
    """Per-group metrics and the largest gap between groups, for each sensitive column.

    Groups smaller than `min_group_size` are listed but left out of the gaps: on a few rows a
    gap says more about sampling noise than about the model.
    """
    report: dict[str, Any] = {}
    for column in contract.sensitive:
        groups = table[column.name].astype(object).where(table[column.name].notna(), MISSING_GROUP)
        counts = groups.value_counts()
        gated = groups.isin(counts[counts >= params.min_group_size].index).to_numpy()
        report[column.name] = {
            "gaps": {},
            "by_group": {},
            "group_sizes": {str(name): int(n) for name, n in counts.items()},
            "not_gated": sorted(str(n) for n in counts[counts < params.min_group_size].index),
        }
        if gated.any():
            gaps, by_group = _group_metrics(
                predictions.actual[gated],
                predictions.predicted[gated],
                groups.to_numpy()[gated],
                contract,
            )
            report[column.name].update(gaps=gaps, by_group=by_group)
    return report


def _group_metrics(
    actual: np.ndarray, predicted: np.ndarray, group: np.ndarray, contract: Contract
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
    )
    from sklearn import metrics as skm

    kind = contract.target.kind
    if kind is TaskKind.BINARY:
        assert contract.target.classes is not None
        positive = contract.target.classes[-1]
        is_positive, says_positive = actual == positive, predicted == positive
        gaps = {
            "demographic_parity_difference": demographic_parity_difference(
                is_positive, says_positive, sensitive_features=group
            ),
            "equalized_odds_difference": equalized_odds_difference(
                is_positive, says_positive, sensitive_features=group
            ),
        }
        frame = MetricFrame(
            metrics={
                "selection_rate": lambda _, p: float(np.mean(p)),
                "recall": lambda a, p: skm.recall_score(a, p, zero_division=0),
            },
            y_true=is_positive,
            y_pred=says_positive,
            sensitive_features=group,
        )
    elif kind is TaskKind.MULTICLASS:
        frame = MetricFrame(
            metrics={"accuracy": skm.accuracy_score},
            y_true=actual,
            y_pred=predicted,
            sensitive_features=group,
        )
        gaps = {"accuracy_difference": frame.difference()["accuracy"]}
    else:
        frame = MetricFrame(
            metrics={"mae": skm.mean_absolute_error},
            y_true=actual,
            y_pred=predicted,
            sensitive_features=group,
        )
        # Relative to the overall error, so one bound fits targets of any scale.
        overall = max(float(frame.overall["mae"]), 1e-12)
        gaps = {"relative_mae_difference": frame.difference()["mae"] / overall}
    by_group = {
        str(name): {metric: round(float(v), 6) for metric, v in row.items()}
        for name, row in frame.by_group.to_dict(orient="index").items()
    }
    return {name: round(float(value), 6) for name, value in gaps.items()}, by_group


def fairness_violations(report: dict[str, Any], max_gap: dict[str, float]) -> list[str]:
    """Each gap above its bound, as one readable line."""
    return [
        f"{column}: {name} {value:.3f} > {max_gap[name]}"
        for column, entry in report.items()
        for name, value in entry["gaps"].items()
        if name in max_gap and value > max_gap[name]
    ]


def write_json(payload: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_plots(plots: dict[str, list[dict[str, Any]]], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        stale.unlink()
    for name, rows in plots.items():
        write_json(rows, directory / f"{name}.json")
