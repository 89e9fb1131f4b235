"""The repository itself: checkable out everywhere, laid out as docs/design.md says."""

from __future__ import annotations

import subprocess

from blueprint import ROOT

# Characters Windows refuses in a file or folder name.
WINDOWS_REFUSED = set('":*?<>|')


def tracked() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [path for path in listed.split("\0") if path]


def test_no_name_holds_a_character_windows_refuses() -> None:
    paths = tracked()
    assert len(paths) > 50
    bad = [p for p in paths if WINDOWS_REFUSED & set(p)]
    assert bad == []


def test_the_template_tree_is_top_level_and_cookiecutter_reaches_it_by_a_symlink() -> None:
    link = ROOT / "{{cookiecutter.project_slug}}"
    assert link.is_symlink()
    assert link.readlink().as_posix() == "template"
    assert (ROOT / "template" / "pyproject.toml").is_file()


def test_no_file_name_carries_a_condition() -> None:
    conditional = [p for p in tracked() if "{%" in p.rsplit("/", 1)[-1]]
    # copier's answers file is copier's own, rendered empty (so absent) for cookiecutter.
    assert conditional == [
        "template/{% if _copier_answers is defined %}{{ _copier_conf.answers_file }}{% endif %}"
    ]
