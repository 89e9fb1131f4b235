"""Batch scoring of a file with the exported model (`{{ cookiecutter.project_slug }} predict IN OUT`).

Runs in the training environment: pandas and pyarrow are imported here, never by the API.
"""

from __future__ import annotations

from pathlib import Path

from ..data import DataError, read_table
from .model_store import load_model_dir


def predict_file(input_path: Path, output_path: Path, model_dir: Path) -> int:
    """Score every row of a CSV/Parquet file; write inputs + predictions to Parquet.

    Output columns: the input columns, `prediction`, and for classification one
    `probability_<class>` column per class. Returns the number of rows scored.
    """
    model = load_model_dir(model_dir)
    table = read_table(input_path)
    missing = [name for name in model.contract.feature_names if name not in table.columns]
    if missing:
        raise DataError(f"{input_path}: missing feature columns: {', '.join(missing)}")
    features = {name: table[name] for name in model.contract.feature_names}
    result = model.predict(model.contract.encode(features))
    scored = table.copy()
    scored["prediction"] = result.predictions
    if result.probabilities is not None and model.classes is not None:
        for index, label in enumerate(model.classes):
            scored[f"probability_{label}"] = result.probabilities[:, index]
    if output_path.suffix != ".parquet":
        raise DataError(f"{output_path}: the output is written as Parquet; use a .parquet name")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(output_path, index=False)
    return len(scored)
