"""copier.yml is the single source of truth; cookiecutter.json and the matrix follow it."""

from __future__ import annotations

import itertools
import subprocess
import sys

import yaml

from blueprint import QUESTIONS, ROOT, is_valid, matrix, option_values


def test_cookiecutter_json_is_derived_from_copier_yml() -> None:
    check = subprocess.run(
        [sys.executable, "scripts/sync_cookiecutter.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_the_sync_check_fails_when_the_files_drift(tmp_path: object) -> None:
    original = (ROOT / "cookiecutter.json").read_text()
    try:
        (ROOT / "cookiecutter.json").write_text(original.replace("Credit Risk", "Drifted", 1))
        check = subprocess.run(
            [sys.executable, "scripts/sync_cookiecutter.py", "--check"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        (ROOT / "cookiecutter.json").write_text(original)
    assert check.returncode == 1
    assert "make sync" in check.stderr


def test_every_question_has_help_type_and_default() -> None:
    required = {
        "project_name",
        "project_slug",
        "package_name",
        "description",
        "author_name",
        "author_email",
        "license",
        "python_version",
        "ml_task",
        "include_serving",
        "include_monitoring",
        "ci",
        "dvc_remote",
        "deployment",
        "scale_out",
    }
    assert required <= set(QUESTIONS)
    for name, spec in QUESTIONS.items():
        assert spec.get("help"), name
        assert spec.get("type") in {"str", "bool"}, name
        assert "default" in spec, name


def test_shared_files_see_every_answer_as_cookiecutter_x() -> None:
    computed = yaml.safe_load((ROOT / "copier.yml").read_text())["cookiecutter"]["default"]
    for name in QUESTIONS:
        assert f'"{name}": {name}' in computed, name


def test_the_matrix_covers_every_pair_of_valid_values() -> None:
    values = option_values()
    names = list(values)
    every = [dict(zip(names, c, strict=True)) for c in itertools.product(*values.values())]
    rows = matrix()
    assert all(is_valid(row) for row in rows)
    for a, b in itertools.combinations(names, 2):
        for va, vb in itertools.product(values[a], values[b]):
            possible = any(is_valid(x) for x in every if x[a] == va and x[b] == vb)
            covered = any(r[a] == va and r[b] == vb for r in rows)
            assert covered == possible, (a, va, b, vb)
