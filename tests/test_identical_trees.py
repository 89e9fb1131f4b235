"""One template tree, two tools: the same answers give byte-identical projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blueprint import cookiecutter, copier_copy, defaults, run, tree

ANSWER_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "multiclass-batch-only": {
        "project_name": "Churn Forecast",
        "license": "BSD-3-Clause",
        "python_version": "3.12",
        "ml_task": "multiclass_classification",
        "include_serving": False,
        "include_monitoring": False,
        "ci": "none",
        "dvc_remote": "gcs",
        "deployment": "none",
        "author_email": "data@corp.example.org",
    },
    "regression-everything": {
        "project_name": "House Prices",
        "package_name": "houses",
        "license": "Apache-2.0",
        "python_version": "3.13",
        "ml_task": "regression",
        "include_monitoring": True,
        "dvc_remote": "s3",
        "deployment": "kubernetes",
        "scale_out": "spark",
        "description": "Price homes, fairly.",
    },
    "proprietary-azure": {
        "project_name": "Fraud Radar",
        "license": "Proprietary",
        "dvc_remote": "azure",
        "author_name": "Risk Analytics",
    },
}


@pytest.mark.parametrize("name", list(ANSWER_SETS))
def test_copier_and_cookiecutter_render_the_same_bytes(
    name: str, template: Path, tmp_path: Path
) -> None:
    answers = {**defaults(), **ANSWER_SETS[name]}
    copier_copy(template, tmp_path / "copier" / "project", answers)
    cookiecutter(template, tmp_path / "cookiecutter", answers)
    (made_by_cookiecutter,) = (tmp_path / "cookiecutter").iterdir()
    by_copier = tree(tmp_path / "copier" / "project", skip=(".git", ".copier-answers.yml"))
    by_cookiecutter = tree(made_by_cookiecutter, skip=(".git",))
    assert sorted(by_copier) == sorted(by_cookiecutter)
    different = [path for path in by_copier if by_copier[path] != by_cookiecutter[path]]
    assert different == []
    assert "uv.lock" in by_copier, "the generation hook should have locked the environment"
    for project in (tmp_path / "copier" / "project", made_by_cookiecutter):
        log = run(["git", "log", "--format=%s"], project).stdout.split("\n")
        assert log[0] == "Initial commit from mlops-blueprint"
        assert run(["git", "status", "--porcelain"], project).stdout == ""
