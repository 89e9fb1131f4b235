"""The export's fast path: built only when it matches scikit-learn, else the reason is kept."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import treelite
from support import SAMPLE

from {{ cookiecutter.package_name }} import export
from {{ cookiecutter.package_name }}.config import ModelType, Params
from {{ cookiecutter.package_name }}.data import make_sample, write_table
from {{ cookiecutter.package_name }}.export import (
    METADATA_FILE,
    SCHEMA_FILE,
    FastPathError,
    build_fast_path,
    check_rows,
    complete_export,
)
from {{ cookiecutter.package_name }}.features import categorical_indices, split_table
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.train import fit_model
from {{ cookiecutter.package_name }}.trees import (
    TREELITE_FILE,
    CompiledTrees,
    CompileError,
    compile_library,
    library_path,
    predict,
)


def test_a_checked_tree_model_gets_a_treelite_checkpoint_and_its_library(
    contract: Contract, params: Params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, test = split_table(make_sample(contract, 800, seed=2), contract, 0.25, seed=2)
    model = fit_model(train, contract, params.model)
    write_table(test, tmp_path / "test.parquet")
    shutil.copyfile(SAMPLE / "schema.yaml", tmp_path / SCHEMA_FILE)
    metadata = complete_export(tmp_path, model, tmp_path / "test.parquet", {"version": "7"})
    assert json.loads((tmp_path / METADATA_FILE).read_text()) == metadata
    assert metadata["scorer"] == "treelite"
    if contract.target.classes is not None:
        assert metadata["classes"] == model.classes_.tolist()
    trees = treelite.Model.deserialize(str(tmp_path / TREELITE_FILE))
    expected = model.predict_proba if contract.target.is_classification else model.predict
    rows = contract.encode(test)
    reference = expected(rows)
    scale = max(1.0, float(np.abs(reference).max()))  # regression values can be large
    assert np.abs(predict(trees, rows, contract.target.kind) - reference).max() <= 1e-9 * scale
    if shutil.which("gcc") is None:
        # Said where serving reads it; serving then runs the checkpoint in GTIL.
        assert metadata["compiled"].startswith("no: no C compiler")
        pytest.skip("gcc is not installed: the compiled library cannot be built or checked")
    assert metadata["compiled"] == "tl2cgen"
    compiled = CompiledTrees(library_path(tmp_path), contract.target.kind)
    assert np.abs(compiled(rows) - reference).max() <= 1e-9 * scale
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc on it: the export would say so
    with pytest.raises(CompileError, match="no C compiler: gcc is not on PATH"):
        compile_library(trees, tmp_path / "again.so")


def test_a_linear_model_keeps_scikit_learn_and_says_why(
    contract: Contract, params: Params, tmp_path: Path
) -> None:
    linear = params.model.model_copy(update={"type": ModelType.LINEAR})
    model = fit_model(make_sample(contract, 300, seed=1), contract, linear)
    shutil.copyfile(SAMPLE / "schema.yaml", tmp_path / SCHEMA_FILE)
    metadata = complete_export(tmp_path, model, tmp_path / "unused.parquet", {})
    assert re.fullmatch(
        r"sklearn \(linear: (LogisticRegression|Ridge) has no trees;.*\)", metadata["scorer"]
    )
    assert not (tmp_path / TREELITE_FILE).exists()


def test_no_check_rows_means_no_fast_path(
    binary_contract: Contract, params: Params, tmp_path: Path
) -> None:
    model = fit_model(make_sample(binary_contract, 300, seed=1), binary_contract, params.model)
    with pytest.raises(FastPathError, match=r"no rows to check treelite against: .*not found"):
        build_fast_path(model, binary_contract, tmp_path / "absent.csv")


def test_a_category_unseen_in_training_is_caught(
    binary_contract: Contract, params: Params, tmp_path: Path
) -> None:
    # scikit-learn sends a category it never saw down the missing-value branch, treelite does
    # not. Neither the training nor the check rows have it: only trying every category shows it.
    table = make_sample(binary_contract, 1500, seed=4)
    seen = table[table["employment_type"] != "unemployed"]
    model = fit_model(seen, binary_contract, params.model)
    write_table(seen, tmp_path / "check.parquet")
    with pytest.raises(FastPathError, match="employment_type taking every category"):
        build_fast_path(model, binary_contract, tmp_path / "check.parquet")


def test_check_rows_cover_missing_values_and_every_category(contract: Contract) -> None:
    checks = check_rows(make_sample(contract, 20, seed=1), contract)
    as_is, missing, *cycled = checks.values()
    assert as_is.shape == (20, len(contract.features))
    nullable = [i for i, c in enumerate(contract.features) if c.nullable]
    assert np.isnan(missing[:, nullable]).all()
    for rows, index in zip(cycled, categorical_indices(contract), strict=True):
        categories = contract.features[index].categories or ()
        assert set(rows[:, index]) == set(range(len(categories)))


def test_the_pipeline_does_not_import_serving() -> None:
    package = Path(export.__file__).parent
    offenders = []
    for module in sorted(package.glob("*.py")):
        # By design: the command line serves batch scoring; the docs' reference lists the routes.
        if module.name in ("cli.py", "reference.py"):
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            offenders += [f"{module.name}: {n}" for n in names if "serving" in n.split(".")]
    assert offenders == []
