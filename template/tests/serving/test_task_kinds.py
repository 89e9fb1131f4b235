"""The template renders binary, multiclass or regression targets: the export and serving
handle all three, and the treelite path answers as scikit-learn does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import orjson
import pytest
from support import TARGETS, contract_file_for

from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.model_store import load_model_dir
from {{ cookiecutter.package_name }}.trees import DIRECT_ROWS, TREELITE_FILE, CompiledTrees

from .exports import write_export


@pytest.fixture(scope="module", params=sorted(TARGETS))
def kind_export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp(request.param)
    write_export(folder / "champion", contract_file_for(request.param, folder), "1", seed=1)
    return folder / "champion"


def _odd_rows(contract: Contract) -> np.ndarray:
    """Sample rows with unknown categories and extra missing values (NaN once encoded)."""
    table = make_sample(contract, 400, seed=5)
    table.loc[::7, "employment_type"] = "astronaut"
    table.loc[::5, "annual_income"] = np.nan
    return contract.encode(table)


def test_treelite_answers_as_scikit_learn_does(kind_export: Path) -> None:
    assert json.loads((kind_export / "metadata.json").read_text())["scorer"] == "treelite"
    assert (kind_export / TREELITE_FILE).is_file()
    model = load_model_dir(kind_export)
    matrix = _odd_rows(model.contract)
    served = model.predict(matrix)
    reference = mlflow.sklearn.load_model(str(kind_export / "model"))
    if model.classes is None:
        expected = reference.predict(matrix)
        assert np.abs(served.predictions - expected).max() <= 1e-9 * np.abs(expected).max()
    else:
        assert served.probabilities is not None
        assert np.abs(served.probabilities - reference.predict_proba(matrix)).max() <= 1e-9
        assert served.predictions.tolist() == reference.predict(matrix).tolist()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc: the export compiles nothing")
def test_the_library_scores_a_few_rows_as_its_batch_loop_does(kind_export: Path) -> None:
    model = load_model_dir(kind_export)
    assert isinstance(model.scorer, CompiledTrees)
    matrix = _odd_rows(model.contract)
    assert np.isnan(matrix).any()
    batch = model.scorer(matrix)  # TL2cgen's loop in C
    rows = [model.scorer(matrix[i : i + 1]) for i in range(2 * DIRECT_ROWS)]  # ctypes, a row
    assert np.array_equal(np.concatenate(rows), batch[: 2 * DIRECT_ROWS])
    assert np.array_equal(model.scorer(matrix[:DIRECT_ROWS]), batch[:DIRECT_ROWS])


def test_predictions_serialise_for_every_task_kind(kind_export: Path) -> None:
    model = load_model_dir(kind_export)
    result = model.predict(_odd_rows(model.contract)[:3])

    payload = orjson.loads(
        orjson.dumps(
            {"predictions": result.predictions.tolist(), "probabilities": result.probabilities},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
    )
    assert len(payload["predictions"]) == 3
    if model.classes is None:
        assert payload["probabilities"] is None
    else:
        assert len(payload["probabilities"][0]) == len(model.classes)
        assert set(payload["predictions"]) <= set(model.classes)
