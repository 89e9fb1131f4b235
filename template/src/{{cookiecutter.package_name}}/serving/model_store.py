"""Load the exported model folder (model/, schema.yaml, metadata.json) without mlflow.

Tree models are served from the treelite checkpoint the export wrote and checked against
scikit-learn (`"scorer": "treelite"` in metadata.json), scored by the library the export
compiled from it (`"compiled": "tl2cgen"`), else by treelite's interpreter, with a warning:
numpy, treelite and tl2cgen only, so neither scikit-learn nor skops is imported. The library
is native code: it is built from the checkpoint where it runs (the export, the image's build),
never taken from elsewhere.

Other models are opened with skops against an explicit allow-list: a model file is code-like
input, so anything the allow-list does not name is refused before it is instantiated.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import treelite
import yaml

from ..contributions import Explainer, TreeExplainer, linear_explainer
from ..schema import Contract, ContractError, TaskKind
from ..trees import COMPILED, TREELITE_FILE, CompiledTrees, library_path, predict
from .prediction_log import lineage

logger = logging.getLogger(__name__)

# Types skops does not trust by default that our estimators need (measured with
# skops.io.get_untrusted_types on the linear pipeline and on HistGradientBoosting with
# categorical features). Reviewed: numpy's dtype, scikit-learn's tree nodes, and the
# `functools.partial` of `check_array` its internal category encoder holds (a partial only
# calls what it wraps, which must be on this list too); anything else is refused.
TRUSTED_TYPES: tuple[str, ...] = (
    "functools.partial",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
)

# The matrix in, scikit-learn's answer out: probabilities (rows x classes) or values.
Scorer = Callable[[np.ndarray], np.ndarray]


class ModelLoadError(RuntimeError):
    """The model folder is missing, incomplete or holds types we do not trust."""


@dataclass(frozen=True)
class Prediction:
    predictions: np.ndarray
    probabilities: np.ndarray | None  # rows x classes, classification only


@dataclass(frozen=True)
class LoadedModel:
    contract: Contract
    metadata: dict[str, Any]
    classes: list[Any] | None
    scorer: Scorer
    trees: treelite.Model | None = None  # the treelite checkpoint the scorer runs, if any
    estimator: Any = None  # the scikit-learn model the scorer runs otherwise

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "model"))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unknown"))

    @cached_property
    def explainer(self) -> Explainer | None:
        """Per-record contributions (POST /explain), built on first use: trees or linear."""
        if self.trees is not None:
            return TreeExplainer(self.trees)
        return linear_explainer(self.estimator)

    @cached_property
    def lineage(self) -> orjson.Fragment:
        """Run id, git commit and data hash, as every prediction log line carries them."""
        return lineage(self.metadata)

    def predict(self, matrix: np.ndarray) -> Prediction:
        """Score an encoded float matrix (`Contract.encode`), one row or many."""
        scores = self.scorer(matrix)
        if self.classes is None:
            return Prediction(scores, None)
        # C order: orjson serialises numpy arrays only in that layout.
        probabilities = np.ascontiguousarray(scores, np.float64)
        # argmax over the probabilities, as scikit-learn's predict does, without a second pass.
        labels = self._class_array[probabilities.argmax(axis=1)]
        return Prediction(labels, probabilities)

    @cached_property
    def _class_array(self) -> np.ndarray:
        return np.asarray(self.classes)


def load_model_dir(model_dir: Path, extra_trusted: tuple[str, ...] = ()) -> LoadedModel:
    """Load an export folder written by `make export-model`."""
    model_dir = Path(model_dir)
    metadata_path = model_dir / "metadata.json"
    if not metadata_path.is_file():
        raise ModelLoadError(
            f"{model_dir}: no metadata.json; run `make export-model` or set MODEL_DIR"
        )
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        contract = Contract.load(model_dir / "schema.yaml")
    except (json.JSONDecodeError, ContractError) as exc:
        raise ModelLoadError(f"{model_dir}: {exc}") from None
    kind = contract.target.kind
    classes = metadata.get("classes")
    if kind is not TaskKind.REGRESSION and not classes:
        raise ModelLoadError(
            f"{metadata_path}: the target is {kind} but no `classes` are recorded; "
            "export the model again with `make export-model`"
        )
    scorer_name = str(metadata.get("scorer", ""))
    trees = estimator = None
    if scorer_name == "treelite":
        trees = _read_trees(model_dir / TREELITE_FILE)
        scorer = _tree_scorer(model_dir, trees, kind, metadata.get("compiled"))
    else:
        logger.warning("scoring with scikit-learn", extra={"reason": scorer_name or "unknown"})
        path = model_file(model_dir / "model")
        estimator = load_estimator(path, extra_trusted)
        scorer = _sklearn_scorer(estimator, path, kind, classes)
    regression = kind is TaskKind.REGRESSION
    return LoadedModel(
        contract, metadata, None if regression else classes, scorer, trees, estimator
    )


def _read_trees(path: Path) -> treelite.Model:
    if not path.is_file():
        raise ModelLoadError(f"{path}: metadata.json names the treelite scorer, but it is missing")
    try:
        trees = treelite.Model.deserialize(str(path))
    except treelite.TreeliteError as exc:
        raise ModelLoadError(f"{path}: not a treelite checkpoint: {exc}") from None
    return trees


def _tree_scorer(
    model_dir: Path, trees: treelite.Model, kind: TaskKind, compiled: str | None
) -> Scorer:
    if compiled != COMPILED:
        logger.warning(
            "trees not compiled, scoring with treelite's GTIL", extra={"reason": compiled}
        )
        return lambda matrix: predict(trees, matrix, kind)
    library = library_path(model_dir)
    if not library.is_file():
        raise ModelLoadError(
            f"{library}: metadata.json says the trees were compiled, but the library of this "
            "checkpoint is missing; run `make export-model` again"
        )
    return CompiledTrees(library, kind)


def _sklearn_scorer(
    estimator: Any, path: Path, kind: TaskKind, classes: list[Any] | None
) -> Scorer:
    if not hasattr(estimator, "predict"):
        raise ModelLoadError(f"{path}: the model file holds no fitted model (no predict)")
    if kind is TaskKind.REGRESSION:
        return lambda matrix: np.asarray(estimator.predict(matrix))
    model_classes = np.asarray(getattr(estimator, "classes_", [])).tolist()
    if model_classes != classes:
        raise ModelLoadError(
            f"{path}: the model's classes {model_classes} are not the classes {classes} "
            "in metadata.json"
        )
    return lambda matrix: np.asarray(estimator.predict_proba(matrix))


def load_estimator(path: Path, extra_trusted: tuple[str, ...] = ()) -> Any:
    # Imported here, not at the top: the treelite path must not load scikit-learn (seconds
    # and a hundred MB per worker).
    import skops.io

    trusted = {*TRUSTED_TYPES, *extra_trusted}
    untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - trusted)
    if untrusted:
        raise ModelLoadError(
            f"{path}: refusing to load types that are not on the allow-list: "
            f"{', '.join(untrusted)}. Review them, then add them to `serving.trusted_types` "
            "(or TRUSTED_TYPES=a,b) if you trust where this file came from."
        )
    return skops.io.load(path, trusted=sorted(trusted))


def model_file(mlflow_model_dir: Path) -> Path:
    """The skops file named by the MLmodel file (flavors.sklearn.pickled_model)."""
    mlmodel = mlflow_model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise ModelLoadError(f"{mlflow_model_dir}: no MLmodel file")
    # libyaml's loader when PyYAML has it: the pure-Python one costs ~20 ms at start-up.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(mlmodel.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    flavor = (document or {}).get("flavors", {})
    sklearn_flavor = flavor.get("sklearn", {})
    if sklearn_flavor.get("serialization_format") != "skops":
        raise ModelLoadError(
            f"{mlmodel}: the model is not saved with skops (pickle is refused); "
            'log it with serialization_format="skops"'
        )
    return mlflow_model_dir / str(sklearn_flavor.get("pickled_model", "model.skops"))


def load_registered_model(uri: str, extra_trusted: tuple[str, ...] = ()) -> LoadedModel:
    """Export `models:/<name>@champion` to a temp folder with the pipeline's own exporter,
    then load it like any export folder.

    Needs mlflow (training environment only); the serving image serves MODEL_DIR. The fast
    path is checked on the test split where params.yaml puts it by default.
    """
    name, _, alias = uri.removeprefix("models:/").partition("@")
    if not uri.startswith("models:/") or not name or alias != "champion":
        raise ModelLoadError(f"MODEL_URI={uri}: expected models:/<name>@champion")
    try:
        # Here, not at the top: the exporter needs mlflow, which the serving image lacks.
        from ..export import ExportError, export_champion
        from ..features import TEST_FILE
    except ImportError as exc:
        raise ModelLoadError(
            f"MODEL_URI={uri} needs the training environment ({exc.name} is not installed); "
            "export the model folder (`make export-model`) and set MODEL_DIR instead"
        ) from None
    with tempfile.TemporaryDirectory(prefix="serving-model-") as tmp:
        try:
            export_champion(name, Path(tmp) / "champion", Path("data/processed") / TEST_FILE)
        except ExportError as exc:
            raise ModelLoadError(f"MODEL_URI={uri}: {exc}") from None
        return load_model_dir(Path(tmp) / "champion", extra_trusted)
