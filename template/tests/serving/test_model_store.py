"""Loading the export folder: the treelite checkpoint without scikit-learn, else skops with
allow-listed types only; clear errors otherwise."""

from __future__ import annotations

import json
import operator
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skops.io
import yaml
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from {{ cookiecutter.package_name }}.config import ModelType
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.serving.model_store import (
    LoadedModel,
    ModelLoadError,
    load_model_dir,
)
from {{ cookiecutter.package_name }}.trees import TREELITE_FILE, library_path

from .conftest import CONTRACT
from .exports import write_export


def _without_fast_path(export_dir: Path, folder: Path) -> Path:
    """A copy of the export as it is when the fast path was refused: served from model/."""
    shutil.copytree(export_dir, folder)
    (folder / TREELITE_FILE).unlink()
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["scorer"] = "sklearn (refused in this test)"
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def test_loads_the_export(export_dir: Path) -> None:
    model = load_model_dir(export_dir)
    assert model.version == "1"
    classes = json.loads((export_dir / "metadata.json").read_text())["classes"]
    assert model.classes == classes
    result = model.predict(np.array([[40.0, 50_000.0, 10_000.0, 0.0, 1.0]]))
    if classes is None:
        assert result.probabilities is None
    else:
        assert result.probabilities is not None
        assert result.probabilities.shape == (1, len(classes))
        assert result.predictions.tolist()[0] in classes


def test_the_treelite_path_loads_neither_sklearn_nor_skops(export_dir: Path) -> None:
    script = (
        "import sys, numpy as np\n"
        "from {{ cookiecutter.package_name }}.serving.model_store import load_model_dir\n"
        f"model = load_model_dir({str(export_dir)!r})\n"
        "model.predict(np.array([[40.0, 50000.0, 10000.0, 0.0, 1.0]]))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'skops', 'pandas'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_without_the_fast_path_the_skops_model_answers_the_same(
    export_dir: Path, tmp_path: Path
) -> None:
    matrix = np.array([[40.0, 50_000.0, 10_000.0, np.nan, 1.0], [70.0, np.nan, 900.0, 2.0, 0.0]])
    fast = load_model_dir(export_dir).predict(matrix)
    slow = load_model_dir(_without_fast_path(export_dir, tmp_path / "champion")).predict(matrix)
    if fast.probabilities is None:
        assert np.allclose(fast.predictions, slow.predictions, rtol=1e-9, atol=0)
    else:
        assert slow.probabilities is not None
        assert np.abs(fast.probabilities - slow.probabilities).max() <= 1e-9
        assert fast.predictions.tolist() == slow.predictions.tolist()


def test_a_linear_export_is_served_by_scikit_learn(tmp_path: Path) -> None:
    write_export(tmp_path / "champion", CONTRACT, "1", seed=1, model_type=ModelType.LINEAR)
    model = load_model_dir(tmp_path / "champion")
    assert model.metadata["scorer"].startswith("sklearn (linear: ")
    rows = model.contract.encode(make_sample(model.contract, 4, seed=2))
    assert model.predict(rows).predictions.shape == (4,)


def test_refuses_types_off_the_allow_list(export_dir: Path, tmp_path: Path) -> None:
    copy = _without_fast_path(export_dir, tmp_path / "champion")
    # Any callable can sit in a FunctionTransformer, which is why unknown types are refused.
    risky = Pipeline([("negate", FunctionTransformer(operator.neg))]).fit(np.ones((3, 1)))
    skops.io.dump(risky, copy / "model" / "model.skops")
    with pytest.raises(ModelLoadError, match=r"not on the allow-list: _operator.neg"):
        load_model_dir(copy)
    # Once reviewed and allowed, the file opens (and fails the next check: it cannot predict).
    with pytest.raises(ModelLoadError, match="holds no fitted model"):
        load_model_dir(copy, extra_trusted=("_operator.neg",))


def test_refuses_pickled_models(export_dir: Path, tmp_path: Path) -> None:
    copy = _without_fast_path(export_dir, tmp_path / "champion")
    mlmodel = copy / "model" / "MLmodel"
    document = yaml.safe_load(mlmodel.read_text())
    document["flavors"]["sklearn"]["serialization_format"] = "cloudpickle"
    mlmodel.write_text(yaml.safe_dump(document))
    with pytest.raises(ModelLoadError, match="pickle is refused"):
        load_model_dir(copy)


def test_a_missing_or_broken_checkpoint_is_named(export_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "champion"
    shutil.copytree(export_dir, copy)
    (copy / TREELITE_FILE).write_bytes(b"not a treelite checkpoint")
    with pytest.raises(ModelLoadError, match=f"{TREELITE_FILE}: not a treelite checkpoint"):
        load_model_dir(copy)
    (copy / TREELITE_FILE).unlink()
    with pytest.raises(ModelLoadError, match="names the treelite scorer, but it is missing"):
        load_model_dir(copy)
    if shutil.which("gcc") is None:
        return  # no library was compiled to go missing (test_export.py checks what is said)
    shutil.copyfile(export_dir / TREELITE_FILE, copy / TREELITE_FILE)
    library_path(copy).unlink()
    with pytest.raises(ModelLoadError, match="compiled, but the library of this checkpoint"):
        load_model_dir(copy)


def test_a_new_export_in_the_same_folder_scores_with_its_own_trees(
    export_dir: Path, export_v2: Path, tmp_path: Path
) -> None:
    # The dynamic loader keeps one library a path: a hot swap must not get the old one back.
    folder = tmp_path / "champion"
    shutil.copytree(export_dir, folder)
    first = load_model_dir(folder)
    shutil.rmtree(folder)
    shutil.copytree(export_v2, folder)
    matrix = first.contract.encode(make_sample(first.contract, 50, seed=3))
    expected = _scores(load_model_dir(export_v2), matrix)
    assert not np.allclose(_scores(first, matrix), expected)
    assert np.array_equal(_scores(load_model_dir(folder), matrix), expected)


def _scores(model: LoadedModel, matrix: np.ndarray) -> np.ndarray:
    """Probabilities, or the predictions of a regressor (the project's own task kind)."""
    answer = model.predict(matrix)
    return np.asarray(answer.predictions if answer.probabilities is None else answer.probabilities)


def test_missing_export_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="make export-model"):
        load_model_dir(tmp_path)
