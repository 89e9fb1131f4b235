"""The reference profile: how the training rows fall into a few bins per feature and score.

The train stage logs it with the run, `export-model` copies it into metadata.json, and the
service counts live rows into the same bins, so Prometheus can compute a PSI per feature and
for the score (monitoring/alerts.yml) from counters alone. Both sides bin with `assign`.

- numeric and integer features: 10 bins at the training deciles (always 9 edges: equal edges
  leave a bin empty on both sides, which adds nothing to a PSI);
- categorical features: one bin per contract category; boolean features: `false`, `true`;
- every feature: `missing`; categorical features: `unknown` (a value the contract does not
  list: the reference has none, so any live share of it counts as drift);
- the score (positive-class probability, top probability, or predicted value): deciles.

numpy only: the serving image imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .schema import Column, ColumnType, Contract

QUANTILES = np.linspace(0.1, 0.9, 9)
MISSING = "missing"
UNKNOWN = "unknown"
# Enough bins for a PSI to see a shift, few enough to keep Prometheus' series count small.
DECILE_LABELS = tuple(f"{i:02d}" for i in range(1, 11))


def scores(probabilities: np.ndarray | None, values: np.ndarray) -> np.ndarray:
    """One number a row: the positive-class probability (binary), the top probability
    (multiclass) or the predicted value (regression)."""
    if probabilities is None:
        return np.asarray(values, dtype=np.float64)
    return probabilities[:, -1] if probabilities.shape[1] == 2 else probabilities.max(axis=1)


def assign(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The bin index of each (non-missing) value: bin i holds edges[i-1] < value <= edges[i]."""
    return np.searchsorted(edges, values, side="left")


def profile(matrix: np.ndarray, contract: Contract, row_scores: np.ndarray) -> dict[str, Any]:
    """The reference of an encoded training matrix (`Contract.encode`) and its scores."""
    features = {
        column.name: _feature(column, matrix[:, index])
        for index, column in enumerate(contract.features)
    }
    score_edges = _deciles(row_scores)
    return {
        "rows": len(matrix),
        "features": features,
        "score": _binned(score_edges, DECILE_LABELS, (), row_scores),
    }


def _feature(column: Column, values: np.ndarray) -> dict[str, Any]:
    if column.type is ColumnType.CATEGORICAL:
        assert column.categories is not None
        # Codes are the categories' positions: the edges fall half-way between them.
        edges = np.arange(len(column.categories) - 1) + 0.5
        return _binned(edges, column.categories, (MISSING, UNKNOWN), values)
    if column.type is ColumnType.BOOLEAN:
        return _binned(np.array([0.5]), ("false", "true"), (MISSING,), values)
    return _binned(_deciles(values), DECILE_LABELS, (MISSING,), values)


def _deciles(values: np.ndarray) -> np.ndarray:
    present = values[~np.isnan(values)]
    if not len(present):  # never seen in training: every live value lands in the first bin
        return np.array([])
    return np.asarray(np.quantile(present, QUANTILES))


def _binned(
    edges: np.ndarray, labels: tuple[str, ...], extra: tuple[str, ...], values: np.ndarray
) -> dict[str, Any]:
    missing = np.isnan(values)
    counts = np.bincount(assign(edges, values[~missing]), minlength=len(labels)).tolist()
    if MISSING in extra:
        counts.append(int(missing.sum()))
    counts.extend(0 for label in extra if label != MISSING)
    total = max(len(values), 1)
    return {
        "bins": [*labels, *extra],
        "edges": edges.tolist(),
        "shares": [count / total for count in counts],
    }
