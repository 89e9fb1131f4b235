"""Batch scoring of a file with the exported model (`{{ cookiecutter.project_slug }} predict IN OUT`).

Runs in the training environment: pandas and pyarrow are imported here, never by the API.
Rows go through the API's own request models first: a row the service would refuse with a 422
goes to the rejects output with the reason, and the others are scored. `score_table` is the
one function both engines run on a batch (the Spark engine on each executor's batches).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from ..config import UnknownCategories
from ..data import DataError, read_table
from .contract_models import RequestTypes, build_request_types
from .model_store import LoadedModel, load_model_dir

REASON = "reason"
# The API's batch limit does not apply to a file: one batch of any size is checked at once.
UNLIMITED_ROWS = 2**62


def rejects_path(output_path: Path) -> Path:
    """Where the refused rows go by default: beside the output, `-rejects` added to its stem."""
    return output_path.with_name(f"{output_path.stem}-rejects{output_path.suffix}")


def request_types(model: LoadedModel, unknown_categories: UnknownCategories) -> RequestTypes:
    return build_request_types(model.contract, unknown_categories, UNLIMITED_ROWS)


def refusals(table: pd.DataFrame, types: RequestTypes) -> list[str | None]:
    """Per row, why the API's request model refuses it ("column: message; ..."), or None."""
    names = [*types.feature_names, *types.passthrough_names]
    columns = {name: _plain(table[name]) for name in names if name in table.columns}
    reasons: dict[int, list[str]] = defaultdict(list)
    if len(table):
        try:
            types.columns.model_validate(columns)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                column, row = (*error["loc"], None)[:2]
                if isinstance(row, int):
                    reasons[row].append(f"{column}: {error['msg']}")
    return ["; ".join(reasons[row]) if row in reasons else None for row in range(len(table))]


def _plain(values: pd.Series) -> list[Any]:
    """Python values as a JSON request would carry them: missing values as None."""
    return list(values.astype(object).where(values.notna(), None).tolist())


def score_table(
    model: LoadedModel, table: pd.DataFrame, types: RequestTypes
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scored rows, refused rows): inputs + `prediction` (+ `probability_<class>`) and
    inputs + `reason`, each in input order."""
    reasons = pd.Series(refusals(table, types), index=table.index, dtype=object)
    refused = reasons.notna()
    accepted = table[~refused.to_numpy()]
    scored = accepted.copy()
    if len(accepted):
        features = {name: accepted[name] for name in model.contract.feature_names}
        result = model.predict(model.contract.encode(features))
        scored["prediction"] = result.predictions
        if result.probabilities is not None and model.classes is not None:
            for index, label in enumerate(model.classes):
                scored[f"probability_{label}"] = result.probabilities[:, index]
    else:
        scored["prediction"] = pd.Series(dtype=_label_dtype(model))
        for label in model.classes or []:
            scored[f"probability_{label}"] = pd.Series(dtype="float64")
    rejects = table[refused.to_numpy()].assign(**{REASON: reasons[refused]})
    return scored, rejects


def _label_dtype(model: LoadedModel) -> str:
    if model.classes is None:
        return "float64"
    return "int64" if all(isinstance(c, int) for c in model.classes) else "object"


def missing_features(columns: list[str], model: LoadedModel, source: object) -> None:
    missing = [name for name in model.contract.feature_names if name not in columns]
    if missing:
        raise DataError(f"{source}: missing feature columns: {', '.join(missing)}")


def predict_file(
    input_path: Path,
    output_path: Path,
    model_dir: Path,
    unknown_categories: UnknownCategories,
    rejects: Path | None = None,
) -> tuple[int, int]:
    """Score every row of a CSV/Parquet file; write inputs + predictions to Parquet, and the
    rows the contract refuses, with their reason, to `rejects` (default `rejects_path`).

    Output columns: the input columns, `prediction`, and for classification one
    `probability_<class>` column per class. Returns the rows scored and refused.
    """
    if output_path.suffix != ".parquet":
        raise DataError(f"{output_path}: the output is written as Parquet; use a .parquet name")
    model = load_model_dir(model_dir)
    table = read_table(input_path)
    missing_features(list(table.columns), model, input_path)
    scored, refused = score_table(model, table, request_types(model, unknown_categories))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(output_path, index=False)
    refused.to_parquet(rejects or rejects_path(output_path), index=False)
    return len(scored), len(refused)
