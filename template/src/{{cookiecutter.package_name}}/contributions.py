"""Per-record explanations of the served model: each feature's contribution to the raw output
(log-odds, class margins, or the value), from the model the service scores with.

Tree models: path attribution (Saabas; XGBoost's `approx_contribs`): along the path a
record takes through a tree, every split moves the expected output (the training-count
weighted mean of the leaves below a node) from the parent's to the child's, and the move is
the split feature's. The contributions add up exactly to the leaf, so over all trees they
add up to the raw output with the base value (the base score plus each tree's root mean).
A leaf's contributions depend on the leaf alone, so each leaf's path is kept once per model
and a request costs one `predict_leaf` and a gather.

Why not SHAP: shap's TreeExplainer reads scikit-learn's histogram gradient boosting as
numeric splits only, so with native categorical splits its values were off the model's
output by 10 log-odds (measured on this project's sample); it also weighs ~240 MB (numba,
llvmlite). treelite 4.8 has no contributions of its own (`gtil` predicts leaves only).

Linear models (the project's preprocessing pipeline, then a linear model): the coefficients
times the transformed input centred on a reference record, the numbers at their training
mean and the categories and booleans at their most frequent value (what the fitted imputers
and scaler hold). The base value is the model's output for that record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import treelite

from .schema import TaskKind

# What the raw output is, by task kind: the response says so.
OUTPUT_SPACE = {
    TaskKind.BINARY: "log_odds",
    TaskKind.MULTICLASS: "class_margin",
    TaskKind.REGRESSION: "value",
}
TREE_METHOD = "tree_path_attribution"
LINEAR_METHOD = "linear_centred_on_reference"


@dataclass(frozen=True)
class Explanation:
    base_values: np.ndarray  # outputs
    contributions: np.ndarray  # rows x outputs x features

    @property
    def raw_outputs(self) -> np.ndarray:
        """rows x outputs: what the contributions add up to (the model's margin)."""
        total: np.ndarray = self.base_values + self.contributions.sum(axis=2)
        return total


class Explainer(Protocol):
    method: str
    outputs: int

    def explain(self, matrix: np.ndarray) -> Explanation: ...


class TreeExplainer:
    """Contributions of a treelite model's trees; built once per model, read-only after."""

    method = TREE_METHOD

    def __init__(self, trees: treelite.Model) -> None:
        document = json.loads(trees.dump_as_json(pretty_print=False))
        self._trees = trees
        self._features = int(document["num_feature"])
        self.outputs = len(document["base_scores"])
        classes = np.asarray(document["class_id"], dtype=np.int64)
        # Binary and regression models have one output, whatever class_id says.
        self._tree_output = classes if self.outputs > 1 else np.zeros_like(classes)
        base = np.asarray(document["base_scores"], dtype=np.float64)
        paths: list[list[tuple[int, float]]] = []  # every leaf's (feature, step) on its path
        leaf_of, offsets, offset = [], [], 0
        for tree, output in zip(document["trees"], self._tree_output, strict=True):
            leaves, root_mean = _leaf_paths(tree["nodes"])
            # node id -> the leaf's row below (leaves only: predict_leaf answers leaves)
            rows = np.zeros(max(leaves) + 1, dtype=np.int64)
            for node_id, path in leaves.items():
                rows[node_id] = len(paths)
                paths.append(path)
            leaf_of.append(rows)
            offsets.append(offset)
            offset += len(rows)
            base[output] += root_mean
        self.base_values = base
        self._leaf_of = np.concatenate(leaf_of)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        # Paths padded to the deepest with (feature 0, step 0): a leaf costs its depth, not
        # the feature count (a dense leaf x feature table would grow with both).
        depth = max(len(path) for path in paths)
        self._path_features = np.zeros((len(paths), depth), dtype=np.int64)
        self._path_steps = np.zeros((len(paths), depth))
        for row, path in enumerate(paths):
            if path:
                self._path_features[row, : len(path)], self._path_steps[row, : len(path)] = zip(
                    *path, strict=True
                )

    def explain(self, matrix: np.ndarray) -> Explanation:
        """Contributions for each row of the encoded matrix (`Contract.encode`)."""
        # One thread: a request is a few rows, the service uses the cores through its workers.
        nodes = np.asarray(treelite.gtil.predict_leaf(self._trees, matrix, nthread=1))
        leaves = self._leaf_of[nodes.astype(np.int64) + self._offsets]  # rows x trees
        rows = len(matrix)
        # Every step of every path lands on (row, the tree's output, the split's feature).
        cell = np.arange(rows)[:, None, None] * self.outputs + self._tree_output[None, :, None]
        cell = cell * self._features + self._path_features[leaves]
        sums = np.bincount(
            cell.ravel(),
            weights=self._path_steps[leaves].ravel(),
            minlength=rows * self.outputs * self._features,
        )
        return Explanation(self.base_values, sums.reshape(rows, self.outputs, self._features))


def _leaf_paths(nodes: list[dict[str, Any]]) -> tuple[dict[int, list[tuple[int, float]]], float]:
    """Per leaf id, the (feature, step) of each split on the path to it; the root's mean."""
    by_id = {node["node_id"]: node for node in nodes}
    mean: dict[int, float] = {}

    def expected(node_id: int) -> tuple[float, float]:
        """(mean output, training count) of the subtree; the count weights its parent's mean."""
        node = by_id[node_id]
        count = float(node.get("data_count", 0.0))
        if "leaf_value" in node:
            mean[node_id] = float(node["leaf_value"])
            return mean[node_id], count
        left, left_count = expected(node["left_child"])
        right, right_count = expected(node["right_child"])
        # Without counts (a model from elsewhere), both sides weigh the same.
        weights = (left_count, right_count) if left_count + right_count > 0 else (1.0, 1.0)
        mean[node_id] = (left * weights[0] + right * weights[1]) / sum(weights)
        return mean[node_id], count

    root = nodes[0]["node_id"]
    expected(root)
    leaves: dict[int, list[tuple[int, float]]] = {}
    stack: list[tuple[int, list[tuple[int, float]]]] = [(root, [])]
    while stack:
        node_id, path = stack.pop()
        node = by_id[node_id]
        if "leaf_value" in node:
            leaves[node_id] = path
            continue
        for child in (node["left_child"], node["right_child"]):
            stack.append((child, [*path, (node["split_feature_id"], mean[child] - mean[node_id])]))
    return leaves, mean[root]


class LinearExplainer:
    """Contributions of a linear model behind the project's per-column preprocessing."""

    method = LINEAR_METHOD

    def __init__(self, pipeline: Any) -> None:
        self._transform = pipeline[:-1].transform
        linear = pipeline.steps[-1][1]
        self._coef = np.atleast_2d(linear.coef_)  # outputs x transformed columns
        self.outputs = len(self._coef)
        self._reference = reference_record(pipeline.steps[0][1])
        self._reference_row = self._transform(self._reference[None, :])
        raw = self._reference_row @ self._coef.T + np.atleast_1d(linear.intercept_)
        self.base_values: np.ndarray = raw[0]

    def explain(self, matrix: np.ndarray) -> Explanation:
        rows, features = matrix.shape
        # Each record's features one at a time in the reference record: the preprocessing
        # works column by column, so the changes split the linear output exactly by feature.
        swapped = np.tile(self._reference, (rows, features, 1))
        diagonal = np.arange(features)
        swapped[:, diagonal, diagonal] = matrix
        moved = self._transform(swapped.reshape(rows * features, features))
        moved = (moved - self._reference_row).reshape(rows, features, -1)
        contributions = np.einsum("rft,ot->rof", moved, self._coef)
        return Explanation(self.base_values, np.ascontiguousarray(contributions))


def reference_record(preprocessor: Any) -> np.ndarray:
    """An encoded record at what the fitted preprocessor learnt: each number's training mean
    (the scaler's), each category's and boolean's most frequent value (the imputer's)."""
    record = np.zeros(preprocessor.n_features_in_)
    for _, fitted, columns in preprocessor.transformers_:
        if isinstance(fitted, str):  # "drop" or "passthrough": no column of ours
            continue
        steps = dict(fitted.steps) if hasattr(fitted, "steps") else {"impute": fitted}
        scale = steps.get("scale")
        record[columns] = scale.mean_ if scale is not None else steps["impute"].statistics_
    return record


def linear_explainer(model: Any) -> LinearExplainer | None:
    """The explainer of the project's linear pipeline; None for any other model."""
    steps = getattr(model, "steps", None)
    if not steps or not hasattr(steps[-1][1], "coef_"):
        return None
    if not hasattr(steps[0][1], "transformers_") or len(steps) != 2:
        return None
    return LinearExplainer(model)
