"""The post-generation hook is plain Python: test it directly."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from blueprint import ROOT, run


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "post_gen", ROOT / "hooks" / "post_gen_project.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prune_removes_nested_empty_folders_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "file.txt").write_text("x")
    load_hook().prune_empty_dirs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_first_commit_signs_with_the_project_author_and_runs_once(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nauthors = [{ name = "Ada", email = "ada@example.com" }]\n'
    )
    hook = load_hook()
    assert not hook.inside_git_repo(tmp_path)
    hook.first_commit(tmp_path)
    assert hook.inside_git_repo(tmp_path)
    log = run(["git", "log", "--format=%s"], tmp_path).stdout
    assert log.strip() == "Initial commit from mlops-blueprint"
