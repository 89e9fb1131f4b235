"""The template's own workflows pass the same linters as the generated ones, and zizmor."""

from __future__ import annotations

from pathlib import Path

import pytest

from blueprint import BIN, ROOT, run
from system import actionlint, skip_without

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_every_workflow_is_linted() -> None:
    assert [w.name for w in WORKFLOWS] == ["release.yml", "test-template.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_schema(workflow: Path) -> None:
    run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(workflow),
        ],
        ROOT,
    )


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_actionlint(workflow: Path) -> None:
    linter = actionlint() or skip_without("actionlint")
    run([*linter, str(workflow)], ROOT)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_zizmor(workflow: Path) -> None:
    # --offline: the audits that would ask GitHub's API are skipped; the rest run here.
    done = run([str(BIN / "zizmor"), "--offline", "--no-progress", str(workflow)], ROOT)
    assert "No findings" in done.stdout


def test_tags_never_restore_a_cache() -> None:
    # zizmor's cache-poisoning audit, stated where a reader looks for the reason.
    test_workflow = (ROOT / ".github" / "workflows" / "test-template.yml").read_text()
    assert "tags:" not in test_workflow


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
