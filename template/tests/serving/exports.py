"""Real export folders for the serving tests, written the way `make export-model` writes them.

The sample data on the given contract, the project's own training code, the model saved as
the train stage logs it (MLflow, skops), then the export module's own functions. Only the
registry round trip is left out: it would cost seconds of database set-up.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import mlflow
from support import SAMPLE, project_params

from {{ cookiecutter.package_name }} import export
from {{ cookiecutter.package_name }}.config import ModelType, Params
from {{ cookiecutter.package_name }}.data import make_sample, write_table
from {{ cookiecutter.package_name }}.evaluate import score
from {{ cookiecutter.package_name }}.export import MODEL_DIR, SCHEMA_FILE, complete_export
from {{ cookiecutter.package_name }}.features import split_table
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.train import example_record, fit_model, reference_profile, skops_options

PACKAGE = Path(export.__file__).parent
# Everything an export depends on: conftest's cache of exports is keyed by these files.
RECIPE = (
    Path(__file__),
    SAMPLE / "params.yaml",
    SAMPLE / "schema.yaml",
    *(PACKAGE / name for name in ("data.py", "features.py", "train.py", "export.py", "trees.py")),
)
# Small and fast: a few hundred rows, few trees.
ROWS = 600
SMALL_MODEL = {"hist_gradient_boosting": {"max_iter": 15}}


def write_export(
    folder: Path,
    contract_path: Path,
    version: str,
    seed: int,
    model_type: ModelType = ModelType.HIST_GRADIENT_BOOSTING,
) -> None:
    """Train on the sample and write the export layout to `folder` (replaced if present)."""
    contract = Contract.load(contract_path)
    params = Params.model_validate(project_params({"model": SMALL_MODEL}))
    model_params = params.model.model_copy(update={"type": model_type, "seed": seed})
    train, test = split_table(make_sample(contract, ROWS, seed), contract, 0.25, seed)
    model = fit_model(train, contract, model_params)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    mlflow.sklearn.save_model(
        model,
        str(folder / MODEL_DIR),
        **skops_options(model),
        pip_requirements=["scikit-learn", "skops"],
    )
    shutil.copyfile(contract_path, folder / SCHEMA_FILE)
    lineage = {
        "name": params.registry.model_name,
        "version": version,
        "alias": "champion",
        "run_id": f"test-{version}",
        "git_commit": "0" * 40,
        "data_hash": "sample",
        "params_hash": params.digest(),
        "trained_at": "2026-11-25T00:00:00+00:00",
        "data_timestamp": "2026-11-24T00:00:00+00:00",
        "metrics": score(model, test, contract, params.evaluate.threshold),
        "example": example_record(train, contract),
        "reference": reference_profile(model, train, contract),
    }
    with tempfile.TemporaryDirectory() as scratch:
        check_data = Path(scratch) / "test.parquet"
        write_table(test, check_data)
        complete_export(folder, model, check_data, lineage)
