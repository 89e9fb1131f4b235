"""Tree models: the export checks them against scikit-learn as a treelite model and compiles
that model to C with TL2cgen; serving runs the compiled library (about 1 ms for 1,000 rows,
against 10 ms in treelite's interpreter, GTIL, and milliseconds a record in scikit-learn).

`python -m <package>.trees MODEL_DIR` compiles an export folder's checkpoint again: the
serving image builds its own library from the checkpoint (not pickle) rather than running
native code copied from a build context.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import tl2cgen
import treelite

from .schema import TaskKind

# The checkpoint `make export-model` writes next to the MLflow model (treelite's own format).
TREELITE_FILE = "model.treelite"
# metadata.json's `compiled` value when the export built the library (library_path).
COMPILED = "tl2cgen"
LIBRARY_GLOB = "model-*.so"
# treelite's operator codes (its model format, v4) for the split rewrite below.
_CATEGORICAL_NODE, _NUMERICAL_NODE, _LESS_THAN = 2, 1, 2


class CompileError(Exception):
    """The trees cannot be compiled to a library here; says why."""


def library_path(model_dir: Path) -> Path:
    """The library compiled from `model_dir`'s checkpoint, named by the checkpoint's hash.

    The dynamic loader keeps one library a path: a new export at the same path, loaded by a
    running service (a hot swap), would score with the old trees (measured). A new checkpoint
    is a new name, and a library never pairs with another checkpoint.
    """
    digest = hashlib.sha256((model_dir / TREELITE_FILE).read_bytes()).hexdigest()[:16]
    return model_dir / f"model-{digest}.so"


def predict(trees: treelite.Model, matrix: np.ndarray, kind: TaskKind) -> np.ndarray:
    """What scikit-learn answers: `predict_proba` for classifiers, `predict` for regressors."""
    # One thread: a request is a few rows, and serving uses the cores through its workers.
    raw = treelite.gtil.predict(trees, matrix, nthread=1, pred_margin=True)
    return link(np.asarray(raw)[:, 0, :], kind)


def link(margin: np.ndarray, kind: TaskKind) -> np.ndarray:
    """Raw scores (rows x classes) to scikit-learn's answer."""
    if kind is TaskKind.REGRESSION:
        return margin[:, 0]
    # Applied here: treelite's own softmax was off by up to 6e-8 (measured), the same
    # formulas in float64 match scikit-learn exactly.
    if kind is TaskKind.BINARY:
        if len(margin) == 1:  # a record: numpy's exp, then float arithmetic (exactly the same)
            one = 1.0 / (1.0 + float(np.exp(-float(margin[0, 0]))))
            return np.array([[1.0 - one, one]])
        positive = 1.0 / (1.0 + np.exp(-margin[:, :1]))
        # concatenate, not column_stack: same result, a micro-second less a request (measured).
        binary: np.ndarray = np.concatenate((1.0 - positive, positive), axis=1)
        return binary
    exponent = np.exp(margin - margin.max(axis=1, keepdims=True))
    probabilities: np.ndarray = exponent / exponent.sum(axis=1, keepdims=True)
    return probabilities


def split_missing_values_only(trees: treelite.Model) -> int:
    """Rewrite categorical splits with an empty category list as `x < 0`; returns how many.

    scikit-learn writes them where only missing values go left. TL2cgen 1.0 compiles an empty
    list to `if (0)`, sending missing values right too (off by 0.45 in probability,
    measured); `x < 0` with missing values left is the same split for the codes
    `Contract.encode` makes (0..n-1, or NaN) and in GTIL.
    """
    rewritten = 0
    for tree_id in range(trees.num_tree):
        tree = trees.get_tree_accessor(tree_id)
        node_type = tree.get_field("node_type")
        begin, end = tree.get_field("category_list_begin"), tree.get_field("category_list_end")
        empty = (node_type == _CATEGORICAL_NODE) & (begin == end)
        if not empty.any():
            continue
        # Copies: get_field's arrays view the model's own buffers, which set_field replaces.
        fields = {name: tree.get_field(name).copy() for name in ("node_type", "cmp", "threshold")}
        fields["node_type"][empty] = _NUMERICAL_NODE
        fields["cmp"][empty] = _LESS_THAN
        fields["threshold"][empty] = 0.0
        for name, field in fields.items():
            tree.set_field(name, field)
        rewritten += int(empty.sum())
    return rewritten


def compile_library(trees: treelite.Model, library: Path) -> None:
    """The trees as a shared library (TL2cgen's C, built by gcc); CompileError says why not."""
    if shutil.which("gcc") is None:
        raise CompileError("no C compiler: gcc is not on PATH (e.g. apt-get install gcc)")
    try:
        tl2cgen.export_lib(
            trees,
            toolchain="gcc",
            libpath=str(library),
            # Translation units gcc builds in parallel: one file of every tree compiles slowly.
            params={"parallel_comp": os.cpu_count() or 1},
            nthread=os.cpu_count(),
        )
    except tl2cgen.TL2cgenError as exc:
        raise CompileError(f"TL2cgen could not build the library: {exc}") from None


# Up to this many rows are scored by calling the library's own function row by row: TL2cgen's
# Predictor and DMatrix cost 25-40 us a call from Python, the function 3 us a row; its batch
# loop in C wins past ~25 rows (measured).
DIRECT_ROWS = 16
# A missing Entry as one float64: its low int is -1 (the rest makes it a NaN, never a value).
_MISSING: float = np.array([-1, 0x7FF80000], dtype=np.int32).view(np.float64)[0].item()


class CompiledTrees:
    """A library `compile_library` wrote, answering as `predict` does."""

    def __init__(self, library: Path, kind: TaskKind) -> None:
        # One thread, as for GTIL: serving uses the cores through its workers.
        self._predictor = tl2cgen.Predictor(library, nthread=1)
        self._kind = kind
        self._outputs = int(self._predictor.num_class.max())
        # TL2cgen's generated C: predict(union Entry* row, int pred_margin, double* result).
        self._row = ctypes.CDLL(str(library)).predict
        self._row.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._row.restype = None
        self._entries = ctypes.c_double * self._predictor.num_feature
        self._margins = ctypes.c_double * self._outputs

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        if len(matrix) > DIRECT_ROWS:
            raw = self._predictor.predict(tl2cgen.DMatrix(matrix), pred_margin=True)
            return link(np.asarray(raw)[:, 0, :], self._kind)
        return link(self._direct(matrix), self._kind)

    def _direct(self, matrix: np.ndarray) -> np.ndarray:
        # A row is an array of `union Entry {int missing; double fvalue;}`: a float64 each,
        # whose first int (the low half, little-endian) is -1 where the value is missing, as
        # TL2cgen's DMatrix writes it.
        if len(matrix) == 1:  # a record: ctypes arrays, no numpy call (~6 us less, measured)
            entries_one = self._entries(*[v if v == v else _MISSING for v in matrix[0].tolist()])
            margins_one = self._margins()
            self._row(entries_one, 1, margins_one)
            return np.frombuffer(memoryview(margins_one)).reshape(1, self._outputs)
        entries = np.array(matrix, dtype=np.float64, order="C")
        missing = np.isnan(entries)
        if missing.any():
            entries.view(np.int32).reshape(*entries.shape, 2)[..., 0][missing] = -1
        margins = np.zeros((len(entries), self._outputs))  # the function adds each leaf to it
        for row in range(len(entries)):
            self._row(entries[row].ctypes.data, 1, margins[row].ctypes.data)
        return margins


def main(model_dir: Path) -> int:
    """Compile an export folder's checkpoint when metadata.json says it was compiled."""
    metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
    if metadata.get("compiled") != COMPILED:
        print(f"{model_dir}: not compiled at export ({metadata.get('compiled')}); nothing to do")
        return 0
    trees = treelite.Model.deserialize(str(model_dir / TREELITE_FILE))
    library = library_path(model_dir)
    try:
        compile_library(trees, library)
    except CompileError as exc:
        print(f"error: {model_dir}: {exc}", file=sys.stderr)
        return 1
    print(f"compiled {model_dir / TREELITE_FILE} to {library}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
