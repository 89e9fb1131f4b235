"""The compiled scorer gives the pipeline's answers: every task kind, both model types."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from support import contract_file_for

from {{ cookiecutter.package_name }}.config import ModelType, Params
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.features import features_and_target
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.compiler import (
    NotCompilableError,
    compile_pipeline,
    max_difference,
    sample_matrix,
    write_scorer,
)
from {{ cookiecutter.package_name }}.serving.model_store import load_model_dir
from {{ cookiecutter.package_name }}.serving.scorer import SCORER_FILE, CompiledScorer, ScorerFormatError
from {{ cookiecutter.package_name }}.train import fit_model

KINDS = ("binary", "multiclass", "regression")
MODELS = (ModelType.HIST_GRADIENT_BOOSTING, ModelType.LINEAR)


@pytest.fixture(scope="module", params=KINDS)
def kind_contract(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return Contract.load(contract_file_for(request.param, tmp_path_factory.mktemp("scorer")))


def _fitted(contract: Contract, params: Params, model_type: ModelType) -> Any:
    table = make_sample(contract, 1_500, seed=11)
    # Missing values in training too, so the imputers and the trees' missing branches learn.
    rng = np.random.default_rng(0)
    for name in ("annual_income", "employment_type"):
        table.loc[rng.random(len(table)) < 0.1, name] = None
    model_params = params.model.model_copy(update={"type": model_type})
    return fit_model(table, contract, model_params)


def _hard_rows(contract: Contract, model: Any) -> np.ndarray:
    """Rows on the split thresholds themselves (`<=` must match), unknown codes, all-NaN."""
    document = compile_pipeline(model, len(contract.features))
    base = sample_matrix(contract, 400, seed=3)
    rows = [base]
    if document["model"]["kind"] == "trees" and document["columns"]:
        for feature in document["model"]["features"]:
            index, ops = document["columns"][feature["column"]]
            if ops:  # thresholds are on the transformed column: skip
                continue
            for threshold in feature["thresholds"]:
                copy = base[:3].copy()
                copy[:, index] = threshold
                rows.append(copy)
    unknown = base[:50].copy()
    unknown[:, :] = np.nan
    rows.append(unknown)
    return np.vstack(rows)


@pytest.mark.parametrize("model_type", MODELS)
def test_scorer_matches_the_pipeline(
    kind_contract: Contract, params: Params, model_type: ModelType
) -> None:
    model = _fitted(kind_contract, params, model_type)
    document = json.loads(json.dumps(compile_pipeline(model, len(kind_contract.features))))
    scorer = CompiledScorer(document)
    assert scorer.task == kind_contract.target.kind.value
    matrix = np.vstack(
        [sample_matrix(kind_contract, 3_000, seed=5), _hard_rows(kind_contract, model)]
    )
    assert np.isnan(matrix).any()
    assert max_difference(scorer, model, matrix) <= 1e-9

    # A few records at once take the per-row path inside predict/predict_proba.
    assert max_difference(scorer, model, matrix[:5]) <= 1e-9
    # Labels, and the one-record path, row by row.
    if scorer.classes is None:
        np.testing.assert_allclose(scorer.predict(matrix), model.predict(matrix), rtol=1e-12)
    else:
        np.testing.assert_array_equal(scorer.predict(matrix), model.predict(matrix))
    for row in matrix[:: max(1, len(matrix) // 300)]:
        label, probabilities = scorer.score_row(row.tolist())
        if probabilities is None:
            assert label == pytest.approx(float(model.predict(row[None, :])[0]), rel=1e-9, abs=1e-9)
        else:
            expected = model.predict_proba(row[None, :])[0]
            np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-9)
            assert label == model.predict(row[None, :])[0]


def test_contract_encoded_records_with_unknown_categories(
    contract: Contract, params: Params
) -> None:
    model = _fitted(contract, params, ModelType.HIST_GRADIENT_BOOSTING)
    scorer = CompiledScorer(compile_pipeline(model, len(contract.features)))
    table = make_sample(contract, 300, seed=4)
    table.loc[::3, "employment_type"] = "astronaut"
    table.loc[1::3, "employment_type"] = None
    matrix, _ = features_and_target(table, contract)
    assert max_difference(scorer, model, matrix) <= 1e-9


def test_unknown_steps_are_not_compiled(contract: Contract) -> None:
    matrix = sample_matrix(contract, 50)
    model = Pipeline([("odd", FunctionTransformer(np.abs)), ("model", _fitted_tree(matrix))])
    with pytest.raises(NotCompilableError, match="FunctionTransformer"):
        compile_pipeline(model, matrix.shape[1])


def _fitted_tree(matrix: np.ndarray) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=3).fit(matrix, np.nan_to_num(matrix[:, 0]))


def test_bad_documents_are_refused() -> None:
    with pytest.raises(ScorerFormatError):
        CompiledScorer({"format": "something-else", "version": 1})
    with pytest.raises(ScorerFormatError):
        CompiledScorer({"format": "{{ cookiecutter.project_slug }}-scorer", "version": 1, "task": "binary"})


def test_export_serves_the_scorer_and_falls_back_when_stale(
    export_dir: Path, tmp_path: Path
) -> None:
    model = load_model_dir(export_dir)
    assert model.scorer is not None
    copy = tmp_path / "champion"
    shutil.copytree(export_dir, copy)
    document = json.loads((copy / SCORER_FILE).read_text())
    document["source_sha256"] = "0" * 64
    (copy / SCORER_FILE).write_text(json.dumps(document))
    fallback = load_model_dir(copy)
    assert fallback.scorer is None  # compiled from another model file: skops is loaded
    matrix = sample_matrix(model.contract, 500)
    compiled, loaded = model.predict(matrix), fallback.predict(matrix)
    # Probabilities for classification; the predicted values themselves for regression.
    np.testing.assert_allclose(
        compiled.predictions if compiled.probabilities is None else compiled.probabilities,
        loaded.predictions if loaded.probabilities is None else loaded.probabilities,
        rtol=0,
        atol=1e-9,
    )


def test_write_scorer_reports_why_not(contract: Contract, tmp_path: Path) -> None:
    matrix = sample_matrix(contract, 50)
    model = Pipeline([("odd", FunctionTransformer(np.abs)), ("model", _fitted_tree(matrix))])
    model_file = tmp_path / "model.skops"
    model_file.write_bytes(b"")
    reason = write_scorer(model, contract, tmp_path, model_file)
    assert reason is not None
    assert not (tmp_path / SCORER_FILE).exists()


def test_serving_a_compiled_export_imports_no_training_stack(export_dir: Path) -> None:
    """Start-up cost and memory: the app factory must not pull in sklearn, skops or pandas."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "os.environ.update(SERVING_CONFIG='none', PREDICTION_LOG_DIR='')\n"
        "from {{ cookiecutter.package_name }}.serving.app import create_app\n"
        "create_app()\n"
        "print(sorted(m for m in ('sklearn', 'skops', 'pandas', 'scipy') if m in sys.modules))\n"
    )
    env = {**os.environ, "MODEL_DIR": str(export_dir), "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stderr
