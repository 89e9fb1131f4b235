"""The train stage: fit the chosen model on the contract's encoded matrix, log it to MLflow.

Everything random is seeded from params.yaml, so the same data and parameters give the same
model and the same metrics.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .config import ModelParams, ModelType, Params
from .drift_bins import profile, scores
from .features import build_preprocessor, categorical_indices, features_and_target
from .schema import Contract
from .tracking import git_commit, model_requirements, package_versions, use_experiment

MODEL_ARTIFACT = "model"
CONTRACT_ARTIFACT = "contract"
# A real training record, logged with the run: the service shows it as its example request.
EXAMPLE_ARTIFACT = "example_record.json"
# How the training rows fall into bins per feature and score: the service's drift reference.
REFERENCE_ARTIFACT = "reference_profile.json"
# What each model type does with the encoded matrix, for the model card.
MODEL_DESCRIPTIONS = {
    ModelType.HIST_GRADIENT_BOOSTING: (
        "scikit-learn's histogram gradient boosting on the encoded matrix as it is: native "
        "categorical splits on the category codes, and missing values sent down the branch "
        "learnt for them (no imputation, scaling or one-hot encoding)"
    ),
    ModelType.LINEAR: (
        "a scikit-learn pipeline on the encoded matrix: impute (median, most frequent), "
        "scale the numbers, one-hot encode the categories, then a regularised linear model"
    ),
}


@dataclass(frozen=True)
class TrainingRun:
    run_id: str
    model_uri: str
    experiment_id: str
    data_hash: str
    params_hash: str
    git_commit: str

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> TrainingRun:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no training run recorded; run the train stage first")
        return cls(**json.loads(path.read_text()))


def build_model(contract: Contract, params: ModelParams) -> Any:
    """An unfitted scikit-learn model that takes the encoded matrix (`Contract.encode`)."""
    # scikit-learn is imported where a model is built, not with this module: the register
    # stage imports it for `TrainingRun` and `MODEL_DESCRIPTIONS` alone.
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    classification = contract.target.is_classification
    if params.type is ModelType.HIST_GRADIENT_BOOSTING:
        boosting = params.hist_gradient_boosting
        options = {
            "max_iter": boosting.max_iter,
            "learning_rate": boosting.learning_rate,
            "max_leaf_nodes": boosting.max_leaf_nodes,
            "l2_regularization": boosting.l2_regularization,
            # Category codes split as categories, not as ordered numbers; NaN is native.
            "categorical_features": categorical_indices(contract) or None,
            # A validation split inside fit would make results depend on it; iterations are fixed.
            "early_stopping": False,
            "random_state": params.seed,
        }
        if classification:
            return HistGradientBoostingClassifier(**options)
        return HistGradientBoostingRegressor(**options)
    linear = params.linear
    estimator = (
        LogisticRegression(
            C=1 / linear.regularization, max_iter=linear.max_iter, random_state=params.seed
        )
        if classification
        else Ridge(alpha=linear.regularization, max_iter=linear.max_iter, random_state=params.seed)
    )
    return Pipeline([("features", build_preprocessor(contract)), ("model", estimator)])


def fit_model(train: pd.DataFrame, contract: Contract, params: ModelParams) -> Any:
    features, target = features_and_target(train, contract)
    return build_model(contract, params).fit(features, target)


def skops_options(model: Any) -> dict[str, Any]:
    """How a model is saved: with skops, never pickle, trusting exactly the types it holds."""
    # Imported here: skops imports every scikit-learn estimator when it loads (0.5-1 s).
    import skops.io

    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return {"serialization_format": "skops", "skops_trusted_types": trusted}


def train_and_log(
    train: pd.DataFrame, contract: Contract, params: Params, data_hash: str, data_timestamp: str
) -> TrainingRun:
    """Fit the model and record it, its inputs and its lineage in one MLflow run."""
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    experiment_id = use_experiment(params.tracking.experiment_name)
    commit = git_commit()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with (
        Progress(*columns, transient=False) as progress,
        mlflow.start_run() as run,
        warnings.catch_warnings(),
    ):
        # MLflow warns about its own duplicate dataset-source registration and about integer
        # class labels in the signature; neither concerns a float-matrix model.
        warnings.simplefilter("ignore", UserWarning)
        step = progress.add_task("fitting the model", total=None)
        started = time.perf_counter()
        model = fit_model(train, contract, params.model)
        fit_seconds = time.perf_counter() - started
        progress.update(step, description=f"fitted in {fit_seconds:.1f} s", completed=1, total=1)

        step = progress.add_task("logging to MLflow", total=None)
        mlflow.set_tags(
            {
                "git_commit": commit,
                "data_hash": data_hash,
                # When the raw table was last written: the service reports the data's age.
                "data_timestamp": data_timestamp,
                "params_hash": params.digest(),
                "task": contract.target.kind.value,
            }
        )
        mlflow.log_params(_flat({"model": params.model.model_dump(mode="json")}))
        mlflow.log_params(
            {"split.test_size": params.split.test_size, "split.seed": params.split.seed}
        )
        mlflow.log_metrics({"train_rows": len(train), "fit_seconds": fit_seconds})
        dataset = from_pandas(
            train, source=str(params.data.raw), name="train", targets=contract.target.name
        )
        mlflow.log_input(dataset, context="training")
        mlflow.log_dict(package_versions(), "environment.json")
        mlflow.log_artifact(str(params.data.contract), CONTRACT_ARTIFACT)
        mlflow.log_dict(example_record(train, contract), EXAMPLE_ARTIFACT)
        mlflow.log_dict(reference_profile(model, train, contract), REFERENCE_ARTIFACT)
        features, _ = features_and_target(train.head(50), contract)
        model_info = mlflow.sklearn.log_model(
            model,
            name=MODEL_ARTIFACT,
            **skops_options(model),
            pip_requirements=model_requirements(),
            signature=infer_signature(features, model.predict(features)),
        )
        progress.update(step, description="logged to MLflow", completed=1, total=1)
    return TrainingRun(
        run_id=run.info.run_id,
        model_uri=model_info.model_uri,
        experiment_id=experiment_id,
        data_hash=data_hash,
        params_hash=params.digest(),
        git_commit=commit,
    )


def example_record(table: pd.DataFrame, contract: Contract) -> dict[str, Any]:
    """The first record with every feature present, as JSON values (for API examples)."""
    features = table[contract.feature_names]
    complete = features.dropna()
    row = (complete if len(complete) else features).iloc[0]
    return {
        str(name): None if pd.isna(value) else value.item() if hasattr(value, "item") else value
        for name, value in row.items()
    }


def reference_profile(model: Any, table: pd.DataFrame, contract: Contract) -> dict[str, Any]:
    """The drift reference of the model's training rows (see drift_bins.py)."""
    matrix, _ = features_and_target(table, contract)
    classifier = contract.target.is_classification
    probabilities = model.predict_proba(matrix) if classifier else None
    values = model.predict(matrix) if probabilities is None else np.empty(0)
    return profile(matrix, contract, scores(probabilities, values))


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = value
    return flat
