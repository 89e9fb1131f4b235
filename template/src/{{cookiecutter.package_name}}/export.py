"""`make export-model`: the registry's champion (or a version: a canary) -> the folder serving
reads.

    model/           the MLflow model (skops): the canonical artifact
    schema.yaml      the contract it was trained on
    model.treelite   tree models only: the same trees as a treelite checkpoint (see trees.py)
    model-<hash>.so  the checkpoint compiled to C by TL2cgen, which serving scores with
    metadata.json    version, lineage (with the training data's timestamp), metrics, classes,
                     the drift reference (drift_bins.py), and which scorer serving uses and why

The treelite model is written only once it matches scikit-learn to 1e-9 on check rows: the
held-out test split as it is, with its nullable columns missing, and with each categorical
column taking every category; so is the compiled library. When either cannot be built, the
reason goes to metadata.json (`scorer`, `compiled`) and the CLI prints it: serving then scores
with scikit-learn, or with treelite's interpreter (GTIL, ~10x slower on large batches).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import mlflow
import numpy as np
import pandas as pd
import treelite
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from .data import DataError, read_table
from .features import categorical_indices
from .registry import CHAMPION
from .schema import ColumnType, Contract, TaskKind
from .tracking import tracking_uri
from .train import CONTRACT_ARTIFACT, EXAMPLE_ARTIFACT, REFERENCE_ARTIFACT
from .trees import (
    COMPILED,
    TREELITE_FILE,
    CompiledTrees,
    CompileError,
    compile_library,
    library_path,
    predict,
    split_missing_values_only,
)

MODEL_DIR = "model"
SCHEMA_FILE = "schema.yaml"
METADATA_FILE = "metadata.json"
TREELITE_SCORER = "treelite"
TOLERANCE = 1e-9
# Enough rows to reach most leaves; the test split of a large table would only cost time.
CHECK_ROWS = 2_000


class ExportError(RuntimeError):
    """The registry has no champion, or not the version asked for, to export."""


class FastPathError(Exception):
    """The treelite model cannot be built or does not match scikit-learn; says why."""


def export_champion(
    name: str,
    destination: Path,
    check_data: Path,
    number: int | None = None,
    expected: int | None = None,
) -> dict[str, Any]:
    """Write the champion of model `name` (or its version `number`: the canary of a rollout,
    which the registry still decides) to `destination`; returns its metadata.

    `check_data` is a table with the contract's feature columns (the test split) that the
    fast path must reproduce. With `expected`, another version is refused before anything is
    written: a release names the version it ships, and the alias may have moved since.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    try:
        if number is None:
            version = client.get_model_version_by_alias(name, CHAMPION)
        else:
            version = client.get_model_version(name, str(number))
    except MlflowException:
        wanted = f"{CHAMPION!r} version" if number is None else f"version {number}"
        raise ExportError(f"model {name!r} has no {wanted} to export") from None
    if expected is not None and str(version.version) != str(expected):
        raise ExportError(
            f"the registry's {CHAMPION} is v{version.version}, not v{expected}: move the "
            f"{CHAMPION!r} alias first (the registry decides what ships)"
        )
    if version.run_id is None:
        raise ExportError(f"model {name!r} v{version.version} has no MLflow run to export from")
    run = client.get_run(version.run_id)
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(
        f"models:/{name}/{version.version}", dst_path=str(destination / MODEL_DIR)
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path=CONTRACT_ARTIFACT, dst_path=scratch
        )
        shutil.copyfile(next(Path(folder).glob("*.yaml")), destination / SCHEMA_FILE)
    tags = version.tags
    trained_at = datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat()
    lineage = {
        "name": name,
        "version": str(version.version),
        # The registry's aliases of an exported version (none once it lost them all).
        "alias": CHAMPION if number is None else ",".join(sorted(version.aliases)),
        "run_id": version.run_id,
        "git_commit": tags.get("git_commit", "unknown"),
        "data_hash": tags.get("data_hash", "unknown"),
        "params_hash": tags.get("params_hash", "unknown"),
        "trained_at": trained_at,
        # Runs logged before the tag existed: the data is at least as old as the training.
        "data_timestamp": run.data.tags.get("data_timestamp", trained_at),
        "metrics": {
            key.removeprefix("metric."): float(value)
            for key, value in sorted(tags.items())
            if key.startswith("metric.")
        },
        "example": _logged_dict(version.run_id, EXAMPLE_ARTIFACT),
        # None for runs logged before it existed: the service then counts no drift bins.
        "reference": _logged_dict(version.run_id, REFERENCE_ARTIFACT),
    }
    model = mlflow.sklearn.load_model(str(destination / MODEL_DIR))
    return complete_export(destination, model, check_data, lineage)


def complete_export(
    destination: Path, model: Any, check_data: Path, lineage: dict[str, Any]
) -> dict[str, Any]:
    """Add the fast path and metadata.json to a folder that holds model/ and schema.yaml."""
    contract = Contract.load(destination / SCHEMA_FILE)
    compiled = None
    try:
        trees, checks = build_fast_path(model, contract, check_data)
    except FastPathError as exc:
        scorer = f"sklearn ({exc})"
    else:
        trees.serialize(str(destination / TREELITE_FILE))
        scorer = TREELITE_SCORER
        compiled = compile_fast_path(trees, library_path(destination), model, contract, checks)
    metadata = {
        **lineage,
        "task": contract.target.kind.value,
        # The model's column order of probabilities, which serving reports classes in.
        "classes": np.asarray(model.classes_).tolist() if hasattr(model, "classes_") else None,
        "scorer": scorer,
        # COMPILED, or why not (serving then runs the checkpoint in GTIL); None for sklearn.
        "compiled": compiled,
    }
    (destination / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def build_fast_path(
    model: Any, contract: Contract, check_data: Path
) -> tuple[treelite.Model, dict[str, np.ndarray]]:
    """The model as treelite trees, checked against scikit-learn on rows of `check_data`;
    returns them with the check rows."""
    if not isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        name = type(final).__name__
        linear = type(final).__module__.startswith("sklearn.linear_model")
        reason = f"linear: {name} has no trees" if linear else f"{name} is not exported to treelite"
        raise FastPathError(f"{reason}; scored by scikit-learn on the encoded matrix")
    try:
        checks = check_rows(read_table(check_data).head(CHECK_ROWS), contract)
    except (DataError, KeyError) as exc:
        raise FastPathError(f"no rows to check treelite against: {exc}") from None
    # treelite casts the NaN category of scikit-learn's internal encoder to an integer; that
    # value is never looked up, so numpy's warning about it is noise.
    with np.errstate(invalid="ignore"):
        try:
            trees = treelite.sklearn.import_model(model)
        except (treelite.TreeliteError, NotImplementedError) as exc:
            raise FastPathError(f"treelite cannot import the model: {exc}") from None
    # The compiled library needs it, and the checkpoint stays the trees the library runs.
    split_missing_values_only(trees)
    kind = contract.target.kind
    gap = _first_miss(lambda rows: predict(trees, rows, kind), model, kind, checks)
    if gap:
        raise FastPathError(f"treelite differs from scikit-learn {gap}")
    return trees, checks


def compile_fast_path(
    trees: treelite.Model,
    library: Path,
    model: Any,
    contract: Contract,
    checks: dict[str, np.ndarray],
) -> str:
    """Compile the trees to `library`, checked like the treelite model: COMPILED, or why not."""
    try:
        compile_library(trees, library)
        kind = contract.target.kind
        gap = _first_miss(CompiledTrees(library, kind), model, kind, checks)
    except CompileError as exc:
        return f"no: {exc}"
    if gap:
        library.unlink()
        return f"no: the compiled library differs from scikit-learn {gap}"
    return COMPILED


def _first_miss(
    scorer: Callable[[np.ndarray], np.ndarray],
    model: Any,
    kind: TaskKind,
    checks: dict[str, np.ndarray],
) -> str:
    """Where `scorer` misses scikit-learn's answer by more than TOLERANCE ("" nowhere)."""
    for label, rows in checks.items():
        expected = model.predict(rows) if kind is TaskKind.REGRESSION else model.predict_proba(rows)
        # Regression values can be large: the tolerance is relative to their size there.
        scale = max(1.0, float(np.abs(expected).max())) if kind is TaskKind.REGRESSION else 1.0
        gap = float(np.abs(scorer(rows) - expected).max())
        if not gap <= TOLERANCE * scale:
            return f"by {gap:.3g} (tolerance {TOLERANCE}) on {len(rows)} rows: {label}"
    return ""


def check_rows(table: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """Encoded rows the fast path must reproduce, by what they exercise.

    Every category matters: one that training never saw is missing to scikit-learn but may
    not be to treelite.
    """
    # A DataFrame is the column mapping `encode` reads, though not typed as a Mapping.
    rows = contract.encode(cast(Mapping[str, Any], table))
    checks = {"the check rows as they are": rows}
    missing = rows.copy()
    nullable = [
        i
        for i, column in enumerate(contract.features)
        if column.nullable or column.type is ColumnType.CATEGORICAL
    ]
    missing[:, nullable] = np.nan
    checks["with nullable and categorical columns missing"] = missing
    for index in categorical_indices(contract):
        column = contract.features[index]
        assert column.categories is not None
        cycled = rows.copy()
        cycled[:, index] = np.arange(len(rows)) % len(column.categories)
        checks[f"with {column.name} taking every category"] = cycled
    return checks


def _logged_dict(run_id: str, artifact: str) -> dict[str, Any] | None:
    """A JSON artifact the train stage logged with the run (None for runs before it did)."""
    try:
        logged: dict[str, Any] = mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact}")
    except (MlflowException, OSError):
        return None
    return logged
