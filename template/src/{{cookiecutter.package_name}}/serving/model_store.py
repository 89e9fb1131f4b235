"""Load the exported model folder (model/, metadata.json, schema.yaml) without mlflow.

When the export holds a compiled scorer (scorer.json, written by `make export-model` and
checked there against the pipeline), that is what is served: plain data scored with numpy,
so neither scikit-learn nor skops is imported. It names the SHA-256 of the model file it was
compiled from and is ignored (with a warning) when that file changed.

Otherwise the model file is opened with skops against an explicit allow-list: a model file is
code-like input, so anything the allow-list does not name is refused before it is instantiated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..schema import Contract, ContractError
from .scorer import SCORER_FILE, CompiledScorer, ScorerFormatError

logger = logging.getLogger(__name__)

# Types skops does not trust by default that our estimators need (measured with
# skops.io.get_untrusted_types on Pipeline + HistGradientBoosting / LogisticRegression).
# Reviewed: numpy's dtype and scikit-learn's tree nodes; anything else is refused.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


class ModelLoadError(RuntimeError):
    """The model folder is missing, incomplete or holds types we do not trust."""


@dataclass(frozen=True)
class Prediction:
    predictions: np.ndarray
    probabilities: np.ndarray | None  # rows x classes, classification only


@dataclass(frozen=True)
class LoadedModel:
    estimator: Any
    contract: Contract
    metadata: dict[str, Any]
    classes: list[Any] | None = field(default=None)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "model"))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unknown"))

    @property
    def scorer(self) -> CompiledScorer | None:
        """The compiled scorer being served, if any (else a scikit-learn estimator)."""
        return self.estimator if isinstance(self.estimator, CompiledScorer) else None

    def predict(self, matrix: np.ndarray) -> Prediction:
        if self.classes is None:
            return Prediction(np.asarray(self.estimator.predict(matrix)), None)
        # C order: orjson serialises numpy arrays only in that layout (multiclass HGB is not).
        probabilities = np.ascontiguousarray(self.estimator.predict_proba(matrix), np.float64)
        # argmax over predict_proba instead of a second pass through predict(): same answer,
        # half the work.
        labels = np.asarray(self.estimator.classes_)[probabilities.argmax(axis=1)]
        return Prediction(labels, probabilities)

    def predict_row(self, row: list[float]) -> tuple[Any, list[float] | None]:
        """One encoded record: (label or value, class probabilities or None)."""
        scorer = self.scorer
        if scorer is not None:
            return scorer.score_row(row)
        result = self.predict(np.asarray([row], dtype=np.float64))
        probabilities = None if result.probabilities is None else result.probabilities[0].tolist()
        return result.predictions.tolist()[0], probabilities


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
    path = model_file(model_dir / "model")
    estimator = _load_scorer(model_dir, path, contract)
    if estimator is None:
        estimator = load_estimator(path, extra_trusted)
    if not hasattr(estimator, "predict"):
        raise ModelLoadError(f"{model_dir}: the model file holds no fitted model (no predict)")
    classes = None
    if contract.target.is_classification:
        if not hasattr(estimator, "classes_"):
            raise ModelLoadError(
                f"{model_dir}: the contract's target is {contract.target.kind} but the model "
                "is not a fitted classifier (no classes_)"
            )
        classes = np.asarray(estimator.classes_).tolist()
    return LoadedModel(estimator, contract, metadata, classes)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _load_scorer(model_dir: Path, model_file: Path, contract: Contract) -> CompiledScorer | None:
    """The compiled scorer of this export, or None to fall back to the skops file."""
    path = model_dir / SCORER_FILE
    if not path.is_file():
        return None
    try:
        scorer = CompiledScorer.load(path)
    except ScorerFormatError as exc:
        logger.warning("compiled scorer ignored", extra={"reason": str(exc)})
        return None
    reason = None
    if not model_file.is_file() or scorer.source_sha256 != file_digest(model_file):
        reason = f"{path} was compiled from another model file than {model_file}"
    elif scorer.task != contract.target.kind.value or scorer.n_features != len(contract.features):
        reason = f"{path} does not match the contract's target kind or features"
    if reason is not None:
        logger.warning("compiled scorer ignored", extra={"reason": reason})
        return None
    return scorer


def load_estimator(path: Path, extra_trusted: tuple[str, ...] = ()) -> Any:
    import skops.io  # only for models without a compiled scorer: the import takes seconds

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

    Needs mlflow (training environment only); the serving image serves MODEL_DIR.
    """
    name, _, alias = uri.removeprefix("models:/").partition("@")
    if not uri.startswith("models:/") or not name or alias != "champion":
        raise ModelLoadError(f"MODEL_URI={uri}: expected models:/<name>@champion")
    try:
        from ..registry import RegistryError, export_champion
    except ImportError as exc:
        raise ModelLoadError(
            f"MODEL_URI={uri} needs the training environment ({exc.name} is not installed); "
            "export the model folder (`make export-model`) and set MODEL_DIR instead"
        ) from None
    with tempfile.TemporaryDirectory(prefix="serving-model-") as tmp:
        try:
            export_champion(name, Path(tmp) / "champion")
        except RegistryError as exc:
            raise ModelLoadError(f"MODEL_URI={uri}: {exc}") from None
        return load_model_dir(Path(tmp) / "champion", extra_trusted)
