"""Loading the export folder: allow-listed skops types only, clear errors otherwise."""

from __future__ import annotations

import operator
import shutil
from pathlib import Path

import numpy as np
import pytest
import skops.io
import yaml
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.model_store import ModelLoadError, load_model_dir


def test_loads_the_export(export_dir: Path) -> None:
    model = load_model_dir(export_dir)
    assert model.version == "1"
    classes = Contract.load(export_dir / "schema.yaml").target.classes
    assert model.classes == (list(classes) if classes is not None else None)
    matrix = np.array([[40.0, 50_000.0, 10_000.0, 0.0, 1.0]])
    result = model.predict(matrix)
    if classes is None:
        assert result.probabilities is None
    else:
        assert result.probabilities is not None
        assert result.probabilities.shape == (1, len(classes))


def test_refuses_types_off_the_allow_list(export_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "champion"
    shutil.copytree(export_dir, copy)
    # Any callable can sit in a FunctionTransformer, which is why unknown types are refused.
    risky = Pipeline([("negate", FunctionTransformer(operator.neg))]).fit(np.ones((3, 1)))
    skops.io.dump(risky, copy / "model" / "model.skops")
    with pytest.raises(ModelLoadError, match=r"not on the allow-list: _operator.neg"):
        load_model_dir(copy)
    # Once reviewed and allowed, the file opens (and fails the next check: it cannot predict).
    with pytest.raises(ModelLoadError, match="holds no fitted model"):
        load_model_dir(copy, extra_trusted=("_operator.neg",))


def test_refuses_pickled_models(export_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "champion"
    shutil.copytree(export_dir, copy)
    mlmodel = copy / "model" / "MLmodel"
    document = yaml.safe_load(mlmodel.read_text())
    document["flavors"]["sklearn"]["serialization_format"] = "cloudpickle"
    mlmodel.write_text(yaml.safe_dump(document))
    with pytest.raises(ModelLoadError, match="pickle is refused"):
        load_model_dir(copy)


def test_missing_export_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="make export-model"):
        load_model_dir(tmp_path)
