"""The compiled scorer: the champion as plain data (scorer.json), scored with numpy alone.

`make export-model` compiles the fitted scikit-learn pipeline (see `compiler.py`) into a
JSON document: the preprocessing as per-column arithmetic (impute, centre, scale, one-hot)
and the model as numbers (a linear model's coefficients, or the boosted trees' split tables).
Loading it imports neither scikit-learn nor skops and runs no code from the file, which is
what makes start-up fast and the file safe to open; model.skops stays the canonical artifact
and the fallback for models the compiler does not know.

Trees are scored with the QuickScorer scheme, vectorised per feature: for each feature, a
record's value falls in one interval between the sorted split thresholds of that feature, and
that interval decides every split on the feature at once. Each interval holds, per tree, the
bitmask of leaves still reachable; AND-ing the masks of all features leaves the exit leaf as
the lowest set bit (leaves are numbered left to right). The comparisons are the same float64
`value <= threshold` tests scikit-learn makes, so the leaves reached are exactly its leaves.

Document layout (version 1):

    {"format": "{{ cookiecutter.project_slug }}-scorer", "version": 1,
     "task": "binary" | "multiclass" | "regression",
     "classes": [...] | null, "n_features": 5,
     "source_sha256": "...",   # of the model.skops it was compiled from
     "columns": [[input_index, [[op, arg], ...]], ...],   # the model's input columns
         # ops, applied in order: ["fill", v] (NaN -> v), ["sub", v], ["div", v], ["eq", v]
     "model": {"kind": "trees", "link": "identity" | "logistic" | "softmax",
               "baseline": [...], "trees_per_iteration": K, "leaf_bits": 16,
               "features": [{"column": j, "thresholds": [...],
                             "masks": [[...T ints...] x (len(thresholds) + 2)]}, ...],
                             # rows: interval 0..len(thresholds), then the NaN row
               "leaf_values": [[...] x T]}
            | {"kind": "linear", "link": ..., "coef": [[...] x K], "intercept": [...]}}
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "{{ cookiecutter.project_slug }}-scorer"
VERSION = 1
SCORER_FILE = "scorer.json"
_ROW_LOOP_MAX = 8
_LINKS = ("identity", "logistic", "softmax")
_MASK_DTYPES: dict[int, type[np.unsignedinteger[Any]]] = {
    8: np.uint8,
    16: np.uint16,
    32: np.uint32,
    64: np.uint64,
}


class ScorerFormatError(ValueError):
    """The scorer file is not a document this version can score."""


class _Column:
    """One model input column: a contract feature through imputation, scaling or one-hot."""

    __slots__ = ("index", "ops")

    def __init__(self, index: int, ops: Sequence[tuple[str, float]]) -> None:
        self.index = index
        self.ops = tuple(ops)

    def one(self, value: float) -> float:
        for op, arg in self.ops:
            if op == "fill":
                if value != value:  # NaN
                    value = arg
            elif op == "sub":
                value = value - arg
            elif op == "div":
                value = value / arg
            else:  # eq
                value = 1.0 if value == arg else 0.0
        return value

    def many(self, values: np.ndarray) -> np.ndarray:
        out = values.astype(np.float64, copy=True)
        for op, arg in self.ops:
            if op == "fill":
                out[np.isnan(out)] = arg
            elif op == "sub":
                out -= arg
            elif op == "div":
                out /= arg
            else:
                out = (out == arg).astype(np.float64)
        return out


class CompiledScorer:
    """Scores encoded feature matrices (`Contract.encode`) like the pipeline it came from.

    It quacks like the fitted estimator serving used before (`predict`, `predict_proba`,
    `classes_`), and adds `score_row` for the single-record fast path.
    """

    def __init__(self, document: dict[str, Any]) -> None:
        try:
            self._load(document)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ScorerFormatError(f"not a valid scorer document: {exc!r}") from None

    # -- loading ---------------------------------------------------------------------------

    def _load(self, document: dict[str, Any]) -> None:
        if document.get("format") != FORMAT or document.get("version") != VERSION:
            raise ValueError(f"format {document.get('format')!r} v{document.get('version')!r}")
        self.task: str = str(document["task"])
        classes = document.get("classes")
        self.classes: list[Any] | None = list(classes) if classes is not None else None
        if self.classes is not None:
            self.classes_ = np.asarray(self.classes)
        self.n_features = int(document["n_features"])
        self.source_sha256 = str(document.get("source_sha256", ""))
        self.columns = [
            _Column(_index(index, self.n_features), [_op(op) for op in ops])
            for index, ops in document["columns"]
        ]
        # Columns that are the input unchanged (trees without a preprocessor) skip the copy.
        self._identity = (
            all(not c.ops and c.index == j for j, c in enumerate(self.columns))
            and len(self.columns) == self.n_features
        )
        model = document["model"]
        self.link = str(model["link"])
        if self.link not in _LINKS:
            raise ValueError(f"unknown link {self.link!r}")
        kind = model["kind"]
        width = len(self.columns)
        if kind == "trees":
            self._load_trees(model, width)
        elif kind == "linear":
            self.kind = "linear"
            self.coef = np.asarray(model["coef"], dtype=np.float64)
            self.intercept = np.asarray(model["intercept"], dtype=np.float64)
            if self.coef.ndim != 2 or self.coef.shape[1] != width:
                raise ValueError(f"coef shape {self.coef.shape} for {width} columns")
            if self.intercept.shape != (self.coef.shape[0],):
                raise ValueError("intercept does not match coef")
            self.outputs = self.coef.shape[0]
            self._coef_rows = [row.tolist() for row in self.coef]
            self._intercepts = self.intercept.tolist()
        else:
            raise ValueError(f"unknown model kind {kind!r}")
        expected = 1 if self.task != "multiclass" else len(self.classes or ())
        if self.outputs != expected or (self.task != "regression" and not self.classes):
            raise ValueError(f"{self.outputs} outputs for a {self.task} task")
        if (self.task == "multiclass") != (self.link == "softmax"):
            raise ValueError(f"link {self.link} for a {self.task} task")

    def _load_trees(self, model: dict[str, Any], width: int) -> None:
        self.kind = "trees"
        bits = int(model["leaf_bits"])
        dtype = _MASK_DTYPES[bits]
        self.baseline = np.asarray(model["baseline"], dtype=np.float64)
        self.outputs = int(model["trees_per_iteration"])
        if self.baseline.shape != (self.outputs,):
            raise ValueError("baseline does not match trees_per_iteration")
        leaf_values = model["leaf_values"]
        self.n_trees = len(leaf_values)
        if self.n_trees % self.outputs:
            raise ValueError("the tree count is not a multiple of trees_per_iteration")
        longest = max((len(v) for v in leaf_values), default=1)
        if longest > bits:
            raise ValueError(f"a tree has {longest} leaves, more than {bits} mask bits")
        # Padded to a rectangle; padding is never reached (its bit is never the lowest set).
        values = np.zeros((self.n_trees, longest), dtype=np.float64)
        for t, leaves in enumerate(leaf_values):
            values[t, : len(leaves)] = leaves
        self.leaf_values = values
        self._flat_values = values.ravel()
        self._tree_offsets = np.arange(self.n_trees, dtype=np.intp) * longest
        self.features: list[tuple[int, np.ndarray, list[float], np.ndarray]] = []
        for feature in model["features"]:
            thresholds = [float(t) for t in feature["thresholds"]]
            if thresholds != sorted(thresholds) or any(math.isnan(t) for t in thresholds):
                raise ValueError("thresholds must be sorted numbers")
            masks = np.asarray(feature["masks"], dtype=dtype)
            if masks.shape != (len(thresholds) + 2, self.n_trees):
                raise ValueError(f"masks shape {masks.shape}")
            column = _index(feature["column"], width)
            self.features.append(
                (column, np.asarray(thresholds, dtype=np.float64), thresholds, masks)
            )
        self._all_leaves = np.full(self.n_trees, (1 << bits) - 1, dtype=dtype)
        self._dtype = dtype
        # The single-record path packs each mask row into one Python int (tree t in bits
        # t*bits ... t*bits+bits-1), so AND-ing a feature's row is one integer operation.
        self._packed = [
            (column, thresholds, [int.from_bytes(row.tobytes(), "little") for row in masks])
            for column, _, thresholds, masks in self.features
        ]
        self._packed_all = int.from_bytes(self._all_leaves.tobytes(), "little")
        self._packed_bytes = self._all_leaves.nbytes
        self._plan_rows()
        # Lowest set bit of every mask value, when masks are small enough for a table.
        self._lowest = (
            _lowest_set_bit(np.arange(1 << bits, dtype=np.uint64)) if bits <= 16 else None
        )

    def _plan_rows(self) -> None:
        """Group the split columns by the input feature they come from. An input whose columns
        are all one-hot (`fill` then `eq`) takes finitely many paths through the trees, so its
        combined mask is looked up by value; other inputs are transformed and bisected."""
        by_input: dict[int, list[tuple[_Column, list[float], list[int]]]] = {}
        for column, thresholds, packed in self._packed:
            spec = self.columns[column]
            by_input.setdefault(spec.index, []).append((spec, thresholds, packed))
        self._discrete: list[tuple[int, dict[float, int], int, int]] = []
        self._continuous: list[tuple[_Column, list[float], list[int]]] = []
        for index, entries in by_input.items():
            if not all(_one_hot(spec.ops) for spec, _, _ in entries):
                self._continuous.extend(entries)
                continue
            values = {arg for spec, _, _ in entries for op, arg in spec.ops if op == "eq"}
            outside = max(values) + 1.0  # equal to no category: every one-hot column is 0

            def combined(value: float, entries: list[Any] = entries) -> int:
                mask = self._packed_all
                for spec, thresholds, packed in entries:
                    x = spec.one(value)
                    mask &= packed[-1] if x != x else packed[bisect_left(thresholds, x)]
                return mask

            table = {value: combined(value) for value in values}
            self._discrete.append((index, table, combined(math.nan), combined(outside)))
        # The same plan for matrices: masks as arrays, one row per category, then the
        # "outside" row and the NaN row.
        self._discrete_masks = []
        for index, table, missing, outside in self._discrete:
            keys = sorted(table)
            masks = np.stack(
                [self._unpack(m) for m in [*(table[k] for k in keys), outside, missing]]
            )
            self._discrete_masks.append((index, np.asarray(keys, dtype=np.float64), masks))
        arrays = {
            id(packed): masks
            for (_, _, _, masks), (_, _, packed) in zip(self.features, self._packed, strict=True)
        }
        self._continuous_masks = [
            (spec, np.asarray(thresholds, dtype=np.float64), arrays[id(packed)])
            for spec, thresholds, packed in self._continuous
        ]

    def _unpack(self, packed: int) -> np.ndarray:
        return np.frombuffer(packed.to_bytes(self._packed_bytes, "little"), dtype=self._dtype)

    @classmethod
    def load(cls, path: Path) -> CompiledScorer:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ScorerFormatError(f"{path}: {exc}") from None
        if not isinstance(document, dict):
            raise ScorerFormatError(f"{path}: not a JSON object")
        return cls(document)

    # -- scoring ---------------------------------------------------------------------------

    def _checked(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected a (rows, {self.n_features}) matrix, got {matrix.shape}")
        return matrix

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """The model's input columns for an encoded matrix (the pipeline's preprocessing)."""
        matrix = self._checked(matrix)
        if self._identity:
            return matrix
        out = np.empty((matrix.shape[0], len(self.columns)), dtype=np.float64)
        for j, column in enumerate(self.columns):
            out[:, j] = column.many(matrix[:, column.index])
        return out

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        """Raw scores (rows x outputs) before the link: log-odds, logits or values."""
        if len(matrix) <= _ROW_LOOP_MAX:  # a few records: per-row Python beats numpy's overhead
            rows = [self._raw_row(row) for row in np.asarray(matrix, dtype=np.float64).tolist()]
            return np.asarray(rows, dtype=np.float64).reshape(len(rows), self.outputs)
        if self.kind == "linear":
            return np.asarray(self.transform(matrix) @ self.coef.T + self.intercept)
        matrix = self._checked(matrix)
        rows = matrix.shape[0]
        reachable = np.broadcast_to(self._all_leaves, (rows, self.n_trees)).copy()
        for index, keys, masks in self._discrete_masks:
            values = matrix[:, index]
            at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
            choice = np.where(keys[at] == values, at, len(keys))  # not a category: "outside"
            choice[np.isnan(values)] = len(keys) + 1
            reachable &= masks[choice]
        for spec, thresholds, masks in self._continuous_masks:
            values = spec.many(matrix[:, spec.index])
            intervals = np.searchsorted(thresholds, values, side="left")
            intervals[np.isnan(values)] = len(thresholds) + 1
            reachable &= masks[intervals]
        # np.take: fancy indexing with small unsigned indices is several times slower.
        lowest = self._lowest
        leaves = _lowest_set_bit(reachable) if lowest is None else np.take(lowest, reachable)
        leaves += self._tree_offsets
        contributions = np.take(self._flat_values, leaves)
        per_output = contributions.reshape(rows, -1, self.outputs).sum(axis=1)
        return np.asarray(per_output + self.baseline)

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        raw = self.raw(matrix)
        if self.link == "logistic":
            positive = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        if self.link == "softmax":
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
        raise ValueError("predict_proba needs a classifier")

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if self.classes is None:
            return np.asarray(self.raw(matrix)[:, 0])
        return np.asarray(self.classes_[self.predict_proba(matrix).argmax(axis=1)])

    def score_row(self, row: Sequence[float]) -> tuple[Any, list[float] | None]:
        """One encoded record (floats, NaN = missing): (label or value, probabilities).

        The single-record path: plain Python floats and a handful of numpy row lookups, no
        matrix. Same arithmetic, so the same answer as `predict`/`predict_proba`.
        """
        raw = self._raw_row(row)
        if self.link == "identity":
            return raw[0], None
        if self.link == "logistic":
            positive = 1.0 / (1.0 + math.exp(-raw[0]))
            probabilities = [1.0 - positive, positive]
        else:
            top = max(raw)
            exps = [math.exp(r - top) for r in raw]
            total = sum(exps)
            probabilities = [e / total for e in exps]
        assert self.classes is not None
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return self.classes[best], probabilities

    def _raw_row(self, row: Sequence[float]) -> list[float]:
        if len(row) != self.n_features:
            raise ValueError(f"expected {self.n_features} values, got {len(row)}")
        if self.kind == "linear":
            x = list(row) if self._identity else [c.one(row[c.index]) for c in self.columns]
            raw = [
                _dot(coef, x) + b for coef, b in zip(self._coef_rows, self._intercepts, strict=True)
            ]
        else:
            reachable = self._packed_all
            for index, table, missing, other in self._discrete:
                value = row[index]
                reachable &= missing if value != value else table.get(value, other)
            for column, thresholds, packed in self._continuous:
                value = column.one(row[column.index])
                if value != value:  # NaN: the last row
                    reachable &= packed[-1]
                else:
                    reachable &= packed[bisect_left(thresholds, value)]
            masks = np.frombuffer(
                reachable.to_bytes(self._packed_bytes, "little"), dtype=self._dtype
            )
            lowest = self._lowest
            leaves = _lowest_set_bit(masks) if lowest is None else np.take(lowest, masks)
            leaves += self._tree_offsets
            contributions = np.take(self._flat_values, leaves)
            if self.outputs == 1:
                raw = [float(contributions.sum()) + float(self.baseline[0])]
            else:
                sums = contributions.reshape(-1, self.outputs).sum(axis=0) + self.baseline
                raw = sums.tolist()
        return raw


def _one_hot(ops: tuple[tuple[str, float], ...]) -> bool:
    return bool(ops) and ops[-1][0] == "eq" and all(op == "fill" for op, _ in ops[:-1])


def _lowest_set_bit(masks: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit of each mask (each mask has at least one bit set)."""
    wide = masks.astype(np.uint64)
    lowest = wide & (~wide + np.uint64(1))
    # frexp is exact on powers of two: 2**k -> (0.5, k + 1).
    return np.frexp(lowest.astype(np.float64))[1].astype(np.intp) - 1


def _dot(coef: list[float], x: list[float]) -> float:
    total = 0.0
    for c, v in zip(coef, x, strict=True):
        total += c * v
    return total


def _index(value: Any, bound: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < bound:
        raise ValueError(f"column index {value!r} out of range 0..{bound - 1}")
    return value


def _op(op: Any) -> tuple[str, float]:
    name, arg = op
    if name not in ("fill", "sub", "div", "eq"):
        raise ValueError(f"unknown column operation {name!r}")
    value = float(arg)
    if math.isnan(value) or (name == "div" and value == 0.0):
        raise ValueError(f"bad argument {arg!r} for {name}")
    return str(name), value
