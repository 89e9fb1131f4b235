"""`make release` tags what CHANGELOG.md names, and refuses while something stands in the way."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from blueprint import ROOT, commit_all, run, snapshot_template


def load_release() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release", ROOT / "scripts" / "release.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHANGELOG = """# Changelog

## [Unreleased]

## [0.3.0] - 2026-12-01

### Added
- The loop.

## [0.2.0] - 2026-11-26

- The pipeline.
"""


def test_the_version_and_its_notes_come_from_the_changelog() -> None:
    release = load_release()
    assert release.latest_version(CHANGELOG) == "0.3.0"
    assert release.notes(CHANGELOG, "v0.3.0") == "### Added\n- The loop.\n"
    assert release.notes(CHANGELOG, "0.2.0") == "- The pipeline.\n"
    with pytest.raises(release.ReleaseError, match=r"no section for version 9\.9\.9"):
        release.notes(CHANGELOG, "9.9.9")
    real = (ROOT / "CHANGELOG.md").read_text()
    assert release.notes(real, release.latest_version(real)).strip()


def test_a_dirty_tree_or_a_version_tagged_already_is_refused(tmp_path: Path) -> None:
    release = load_release()
    repo = snapshot_template(tmp_path / "repo", tag=None)
    assert release.repository_refusals(repo) == []
    version = release.latest_version((repo / "CHANGELOG.md").read_text())
    run(["git", "tag", f"v{version}"], repo)
    (repo / "README.md").write_text("changed\n")
    refused = release.repository_refusals(repo)
    assert any("uncommitted changes" in problem for problem in refused)
    assert any(f"v{version} is tagged already" in problem for problem in refused)
    commit_all(repo, "README")
    assert len(release.repository_refusals(repo)) == 1


@pytest.mark.slow
def test_answers_that_render_nothing_block_a_release(template: Path) -> None:
    # Every answer changes the project: kubernetes renders its manifests, the last one to.
    assert load_release().silent_answers(template) == []
