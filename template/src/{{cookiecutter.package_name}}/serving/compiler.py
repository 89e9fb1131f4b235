"""Compile a fitted scikit-learn pipeline into a scorer document (`scorer.py` scores it).

Runs at export time (training environment, scikit-learn installed). It knows exactly the
pieces this project's pipelines are made of; anything else raises `NotCompilableError`, and the
service then falls back to model.skops. `compile_and_verify` also checks the compiled scorer
against the pipeline itself on generated records before anything is written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..schema import ColumnType, Contract
from .scorer import FORMAT, SCORER_FILE, VERSION, CompiledScorer

# Agreement required between the compiled scorer and the pipeline (probabilities/values,
# relative for large regression values).
TOLERANCE = 1e-9

Ops = list[list[Any]]
Columns = list[tuple[int, Ops]]


class NotCompilableError(ValueError):
    """The pipeline holds a step or an estimator setting the compiler does not handle."""


def compile_pipeline(model: Any, n_features: int) -> dict[str, Any]:
    """The scorer document for a fitted Pipeline (or bare estimator) on `n_features` inputs."""
    from sklearn.pipeline import Pipeline

    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else [model]
    columns: Columns = [(index, []) for index in range(n_features)]
    for step in steps[:-1]:
        columns = _transform(step, columns)
    estimator = steps[-1]
    document = {
        "format": FORMAT,
        "version": VERSION,
        "n_features": n_features,
        "columns": [[index, ops] for index, ops in columns],
        **_estimator(estimator, len(columns)),
    }
    return document


# -- preprocessing -----------------------------------------------------------------------


def _transform(step: Any, columns: Columns) -> Columns:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if step is None or step == "passthrough":
        return columns
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            columns = _transform(inner, columns)
        return columns
    if isinstance(step, ColumnTransformer):
        return _column_transformer(step, columns)
    if type(step) is SimpleImputer:
        return _imputer(step, columns)
    if type(step) is StandardScaler:
        return _scaler(step, columns)
    if type(step) is OneHotEncoder:
        return _one_hot(step, columns)
    raise NotCompilableError(f"unsupported step {type(step).__name__}")


def _column_transformer(step: Any, columns: Columns) -> Columns:
    if getattr(step, "sparse_output_", False):
        raise NotCompilableError("sparse ColumnTransformer output")
    out: Columns = []
    for name, transformer, selection in step.transformers_:
        if transformer == "drop":
            continue
        indices = _indices(selection, len(columns))
        if name == "remainder" and not indices:
            continue
        selected = [columns[i] for i in indices]
        out.extend(selected if transformer == "passthrough" else _transform(transformer, selected))
    return out


def _indices(selection: Any, width: int) -> list[int]:
    values = np.asarray(selection)
    if values.dtype == bool:
        if len(values) != width:
            raise NotCompilableError("boolean column mask of the wrong width")
        return [int(i) for i in np.flatnonzero(values)]
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise NotCompilableError("columns selected by name; the encoded matrix has positions only")
    return [int(i) for i in values.ravel()]


def _imputer(step: Any, columns: Columns) -> Columns:
    missing = step.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)) or step.add_indicator:
        raise NotCompilableError("SimpleImputer other than NaN without indicator")
    statistics = np.asarray(step.statistics_, dtype=np.float64)
    if len(statistics) != len(columns) or np.isnan(statistics).any():
        raise NotCompilableError("SimpleImputer with an all-missing column")
    return [
        (i, [*ops, ["fill", float(s)]]) for (i, ops), s in zip(columns, statistics, strict=True)
    ]


def _scaler(step: Any, columns: Columns) -> Columns:
    out: Columns = []
    for j, (index, ops) in enumerate(columns):
        new = list(ops)
        if step.with_mean:
            new.append(["sub", float(step.mean_[j])])
        if step.with_std:
            new.append(["div", float(step.scale_[j])])
        out.append((index, new))
    return out


def _one_hot(step: Any, columns: Columns) -> Columns:
    if step.drop_idx_ is not None or getattr(step, "_infrequent_enabled", False):
        raise NotCompilableError("OneHotEncoder with drop or infrequent categories")
    out: Columns = []
    for (index, ops), categories in zip(columns, step.categories_, strict=True):
        values = np.asarray(categories)
        if not np.issubdtype(values.dtype, np.number) or np.isnan(values.astype(float)).any():
            raise NotCompilableError("OneHotEncoder categories must be numbers (contract codes)")
        out.extend((index, [*ops, ["eq", float(value)]]) for value in values)
    return out


# -- estimators ----------------------------------------------------------------------------


def _estimator(estimator: Any, width: int) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    if getattr(estimator, "n_features_in_", width) != width:
        raise NotCompilableError(
            f"the estimator takes {estimator.n_features_in_} columns, not {width}"
        )
    kind = type(estimator)
    if kind is HistGradientBoostingClassifier or kind is HistGradientBoostingRegressor:
        return _boosting(estimator)
    if kind is LogisticRegression:
        if getattr(estimator, "multi_class", "auto") == "ovr":
            raise NotCompilableError("one-vs-rest LogisticRegression")
        classes = estimator.classes_.tolist()
        return {
            "task": "binary" if len(classes) == 2 else "multiclass",
            "classes": classes,
            "model": {
                "kind": "linear",
                "link": "logistic" if len(classes) == 2 else "softmax",
                "coef": np.asarray(estimator.coef_, dtype=np.float64).tolist(),
                "intercept": np.asarray(estimator.intercept_, dtype=np.float64).tolist(),
            },
        }
    if kind is Ridge or kind is LinearRegression:
        coef = np.asarray(estimator.coef_, dtype=np.float64)
        if coef.ndim != 1:
            raise NotCompilableError("multi-output linear regression")
        return {
            "task": "regression",
            "classes": None,
            "model": {
                "kind": "linear",
                "link": "identity",
                "coef": [coef.tolist()],
                "intercept": [float(estimator.intercept_)],
            },
        }
    raise NotCompilableError(f"unsupported estimator {kind.__name__}")


def _boosting(estimator: Any) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    classifier = isinstance(estimator, HistGradientBoostingClassifier)
    outputs = int(estimator.n_trees_per_iteration_)
    if classifier:
        classes = estimator.classes_.tolist()
        task = "binary" if len(classes) == 2 else "multiclass"
        link = "logistic" if outputs == 1 else "softmax"
    else:
        if estimator.loss != "squared_error":
            raise NotCompilableError(f"HistGradientBoostingRegressor loss {estimator.loss!r}")
        classes, task, link = None, "regression", "identity"
    trees = [predictor.nodes for iteration in estimator._predictors for predictor in iteration]
    n_trees = len(trees)
    leaf_values: list[list[float]] = []
    # per feature: threshold -> per tree AND-mask of the nodes with that threshold;
    # and the AND-mask of the nodes that send missing values right.
    by_threshold: dict[int, dict[float, dict[int, int]]] = {}
    missing_right: dict[int, dict[int, int]] = {}
    longest = max((int(nodes["is_leaf"].sum()) for nodes in trees), default=1)
    bits = next((b for b in (8, 16, 32, 64) if longest <= b), None)
    if bits is None:
        raise NotCompilableError(f"a tree has {longest} leaves; the scorer handles up to 64")
    full = (1 << bits) - 1
    for t, nodes in enumerate(trees):
        if nodes["is_categorical"].any():
            raise NotCompilableError("native categorical splits")
        leaves, spans = _leaves_in_order(nodes)
        leaf_values.append([float(nodes["value"][i]) for i in leaves])
        for node in map(int, np.flatnonzero(nodes["is_leaf"] == 0)):
            # Going right removes the leaves of the left subtree.
            left_first, left_after = spans[int(nodes["left"][node])]
            mask = full & ~(((1 << (left_after - left_first)) - 1) << left_first)
            feature = int(nodes["feature_idx"][node])
            threshold = float(nodes["num_threshold"][node])
            per_tree = by_threshold.setdefault(feature, {}).setdefault(threshold, {})
            per_tree[t] = per_tree.get(t, full) & mask
            if not nodes["missing_go_to_left"][node]:
                right = missing_right.setdefault(feature, {})
                right[t] = right.get(t, full) & mask
    features = []
    for feature in sorted(by_threshold):
        thresholds = sorted(by_threshold[feature])
        row = [full] * n_trees
        rows = [list(row)]
        for threshold in thresholds:
            for t, mask in by_threshold[feature][threshold].items():
                row[t] &= mask
            rows.append(list(row))
        nan_row = [full] * n_trees
        for t, mask in missing_right.get(feature, {}).items():
            nan_row[t] &= mask
        rows.append(nan_row)
        features.append({"column": feature, "thresholds": thresholds, "masks": rows})
    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel()
    return {
        "task": task,
        "classes": classes,
        "model": {
            "kind": "trees",
            "link": link,
            "baseline": baseline.tolist(),
            "trees_per_iteration": outputs,
            "leaf_bits": bits,
            "features": features,
            "leaf_values": leaf_values,
        },
    }


def _leaves_in_order(nodes: Any) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """Leaves left to right, and for every node the range [first, after) of leaf numbers
    below it."""
    leaves: list[int] = []
    spans: dict[int, tuple[int, int]] = {}
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:  # iterative post-order: no recursion limit on deep trees
        node, children_done = stack.pop()
        if nodes["is_leaf"][node]:
            leaves.append(node)
            spans[node] = (len(leaves) - 1, len(leaves))
        elif children_done:
            left, right = int(nodes["left"][node]), int(nodes["right"][node])
            spans[node] = (spans[left][0], spans[right][1])
        else:
            stack.append((node, True))
            stack.append((int(nodes["right"][node]), False))
            stack.append((int(nodes["left"][node]), False))
    return leaves, spans


# -- verification and export -------------------------------------------------------------


def sample_matrix(contract: Contract, rows: int, seed: int = 0) -> np.ndarray:
    """Encoded records spread over the contract's ranges, ~15% missing in every column
    (missing and unknown categories encode alike: NaN)."""
    rng = np.random.default_rng(seed)
    columns = []
    for column in contract.features:
        if column.type is ColumnType.CATEGORICAL:
            assert column.categories is not None
            values = rng.integers(0, len(column.categories), rows).astype(np.float64)
        elif column.type is ColumnType.BOOLEAN:
            values = rng.integers(0, 2, rows).astype(np.float64)
        else:
            low = column.min if column.min is not None else 0.0
            high = column.max if column.max is not None else max(low, 0.0) + 1e6
            # Log-uniform as well as uniform draws, so small values are covered too.
            uniform = rng.uniform(low, high, rows)
            spread = low + np.expm1(rng.uniform(0, np.log1p(high - low), rows))
            values = np.where(rng.random(rows) < 0.5, uniform, spread)
            if column.type is ColumnType.INTEGER:
                values = np.round(values)
        values[rng.random(rows) < 0.15] = np.nan
        columns.append(values)
    return np.column_stack(columns)


def max_difference(scorer: CompiledScorer, model: Any, matrix: np.ndarray) -> float:
    """Largest disagreement of the scorer with the model's predict_proba / predict."""
    if scorer.classes is not None:
        expected = np.asarray(model.predict_proba(matrix), dtype=np.float64)
        got = scorer.predict_proba(matrix)
        labels_agree = np.array_equal(scorer.predict(matrix), np.asarray(model.predict(matrix)))
        rows = [scorer.score_row(row.tolist())[1] for row in matrix[:200]]
        row_gap = float(np.abs(np.asarray(rows, dtype=np.float64) - expected[:200]).max())
        gap = max(float(np.abs(got - expected).max()), row_gap)
        return gap if labels_agree else math.inf
    expected = np.asarray(model.predict(matrix), dtype=np.float64)
    got = scorer.predict(matrix)
    scale = np.maximum(1.0, np.abs(expected))
    values = np.asarray([scorer.score_row(row.tolist())[0] for row in matrix[:200]])
    return float(
        max(
            (np.abs(got - expected) / scale).max(),
            (np.abs(values - expected[:200]) / scale[:200]).max(),
        )
    )


def compile_and_verify(model: Any, contract: Contract, rows: int = 5_000) -> dict[str, Any]:
    """Compile, then check the scorer against the model on generated records (with missing
    values) before trusting it; raises NotCompilableError when they disagree."""
    document = compile_pipeline(model, len(contract.features))
    if document["task"] != contract.target.kind.value:
        raise NotCompilableError(
            f"a {document['task']} model for a {contract.target.kind} contract"
        )
    scorer = CompiledScorer(json.loads(json.dumps(document)))
    gap = max_difference(scorer, model, sample_matrix(contract, rows))
    if not gap <= TOLERANCE:
        raise NotCompilableError(f"the compiled scorer differs from the model by {gap:g}")
    return document


def write_scorer(model: Any, contract: Contract, export_dir: Path, model_file: Path) -> str | None:
    """Write export_dir/scorer.json for `model` (loaded from `model_file`); returns the reason
    it was not written, or None."""
    import hashlib

    target = Path(export_dir) / SCORER_FILE
    try:
        document = compile_and_verify(model, contract)
    except NotCompilableError as exc:
        target.unlink(missing_ok=True)
        return str(exc)
    document["source_sha256"] = hashlib.sha256(Path(model_file).read_bytes()).hexdigest()
    target.write_text(json.dumps(document), encoding="utf-8")
    return None
