"""`copier update` (and `cruft update` for cookiecutter users) keep users' work.

The test builds both template versions itself: no tag or history of this checkout is needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from blueprint import BIN, ROOT, commit_all, copier_copy, run, snapshot_template

SLUG = "template"
USER_MODULE = "def score_bonus(points: int) -> int:\n    return points * 2\n"


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    """A template repo with v0.1.0 (today's tree) and v0.2.0 (a change on top of it)."""
    repo = snapshot_template(tmp_path / "template", tag="v0.1.0")
    (repo / SLUG / "CONTRIBUTING.md").write_text("# Contributing\n\nRun `make all` first.\n")
    makefile = repo / SLUG / "Makefile"
    makefile.write_text(makefile.read_text().replace("## The test suite", "## Tests, quickly"))
    commit_all(repo, "v0.2.0: a contributing guide, a clearer help line")
    run(["git", "tag", "v0.2.0"], repo)
    return repo


def user_edits(project: Path) -> None:
    (project / "src" / "credit_risk" / "bonus.py").write_text(USER_MODULE)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Team notes\n\nOn-call: #risk-ml.\n")
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text().replace("## The test suite", "## Our whole suite"))
    commit_all(project, "Team edits")


@pytest.mark.slow
def test_copier_update_keeps_edits_brings_changes_and_marks_conflicts(
    versions: Path, tmp_path: Path
) -> None:
    project = tmp_path / "credit-risk"
    copier_copy(versions, project, {}, ref="v0.1.0")
    user_edits(project)

    run(
        [str(BIN / "copier"), "update", "--trust", "--defaults", "--quiet", "--vcs-ref", "v0.2.0"],
        project,
    )

    assert (project / "src" / "credit_risk" / "bonus.py").read_text() == USER_MODULE
    assert "On-call: #risk-ml." in (project / "README.md").read_text()
    assert (project / "CONTRIBUTING.md").read_text().startswith("# Contributing")
    makefile = (project / "Makefile").read_text()
    assert "<<<<<<<" in makefile
    assert ">>>>>>>" in makefile
    assert "## Our whole suite" in makefile, "the user's line was overwritten"
    assert "## Tests, quickly" in makefile
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v0.2.0"


@pytest.mark.slow
def test_cruft_update_brings_changes_to_a_cookiecutter_project(
    versions: Path, tmp_path: Path
) -> None:
    run(
        [
            str(BIN / "cruft"),
            "create",
            "--no-input",
            "--checkout",
            "v0.1.0",
            "--output-dir",
            str(tmp_path),
            str(versions),
        ],
        tmp_path,
    )
    project = tmp_path / "credit-risk"
    assert (project / ".cruft.json").is_file()
    commit_all(project, "Record the cruft link")
    user_edits(project)

    done = run(
        [str(BIN / "cruft"), "update", "--skip-apply-ask", "--checkout", "v0.2.0"],
        project,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "src" / "credit_risk" / "bonus.py").read_text() == USER_MODULE
    assert "On-call: #risk-ml." in (project / "README.md").read_text()
    assert (project / "CONTRIBUTING.md").is_file()
    makefile = (project / "Makefile").read_text()
    assert "## Our whole suite" in makefile, "the user's line was overwritten"
    # cruft leaves the hunk it could not apply beside the file for the user to resolve.
    rejected = project / "Makefile.rej"
    assert "<<<<<<<" in makefile or (
        rejected.is_file() and "Tests, quickly" in rejected.read_text()
    )


def test_the_changelog_names_the_current_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [0.1.0]" in changelog
