"""Write a small model in the export layout (model/, metadata.json, schema.yaml).

Stands in for `make export-model` so serving tests and `make bench` need no pipeline run:
synthetic rows drawn from the contract, a real sklearn Pipeline, saved by mlflow with skops.
Usage: python tests/serving/synthetic_export.py OUT_DIR [VERSION]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from {{ cookiecutter.package_name }}.schema import ColumnType, Contract, TaskKind

TRUSTED = ["numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def synthetic_rows(contract: Contract, rows: int, seed: int = 0) -> dict[str, list[Any]]:
    """Columns of valid values for every feature, ~10% missing where nullable."""
    rng = np.random.default_rng(seed)
    table: dict[str, list[Any]] = {}
    for column in contract.features:
        if column.type is ColumnType.CATEGORICAL:
            assert column.categories is not None
            values: list[Any] = rng.choice(list(column.categories), rows).tolist()
        elif column.type is ColumnType.BOOLEAN:
            values = rng.random(rows).__lt__(0.5).tolist()
        else:
            low = column.min if column.min is not None else 0.0
            high = column.max if column.max is not None else low + 200_000.0
            drawn = rng.uniform(low, high, rows)
            values = (
                drawn.round().astype(int).tolist()
                if column.type is ColumnType.INTEGER
                else drawn.tolist()
            )
        if column.nullable:
            values = [None if rng.random() < 0.1 else v for v in values]
        table[column.name] = values
    return table


def _target(contract: Contract, matrix: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = np.nan_to_num(matrix[:, 0]) / (np.nanmax(np.abs(matrix[:, 0])) or 1.0)
    signal = signal + rng.normal(0, 0.3, len(signal))
    target = contract.target
    if target.kind is TaskKind.REGRESSION:
        floor = target.min if target.min is not None else -np.inf
        return np.asarray(np.maximum(signal * 1000, floor))
    assert target.classes is not None
    bins = np.quantile(signal, np.linspace(0, 1, len(target.classes) + 1)[1:-1])
    labels = np.asarray(target.classes, dtype=object)[np.digitize(signal, bins)]
    return np.asarray(labels.astype(type(target.classes[0])))


def write_export(
    out_dir: Path, contract_path: Path, version: str = "1", rows: int = 400, seed: int = 0
) -> Path:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow.sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    contract = Contract.load(contract_path)
    matrix = contract.encode(synthetic_rows(contract, rows, seed))
    target = _target(contract, matrix, seed)
    estimator = (
        HistGradientBoostingClassifier(max_iter=15, random_state=seed)
        if contract.target.is_classification
        else HistGradientBoostingRegressor(max_iter=15, random_state=seed)
    )
    model = Pipeline([("model", estimator)]).fit(matrix, target)
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    mlflow.sklearn.save_model(
        model,
        str(out_dir / "model"),
        serialization_format="skops",
        skops_trusted_types=TRUSTED,
        pip_requirements=["scikit-learn", "skops"],
    )
    shutil.copyfile(contract_path, out_dir / "schema.yaml")
    # What `make export-model` adds: the compiled scorer serving loads first.
    from {{ cookiecutter.package_name }}.serving.compiler import write_scorer

    reason = write_scorer(model, contract, out_dir, out_dir / "model" / "model.skops")
    assert reason is None, reason
    metadata = {
        "name": "{{ cookiecutter.project_slug }}",
        "version": version,
        "alias": "champion",
        "run_id": f"synthetic-{version}",
        "git_commit": "0" * 40,
        "data_hash": "synthetic",
        "params_hash": "synthetic",
        "trained_at": "2026-11-25T00:00:00+00:00",
        "task": str(contract.target.kind),
        "classes": list(contract.target.classes) if contract.target.classes else None,
        "metrics": {"synthetic_score": 0.5},
    }
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return out_dir


if __name__ == "__main__":
    write_export(
        Path(sys.argv[1]),
        Path("schema.yaml"),
        version=sys.argv[2] if len(sys.argv) > 2 else "1",
    )
