"""Finish a freshly generated project: run by cookiecutter and by copier's `_tasks`.

Plain Python on purpose (no template syntax): it reads what it needs from the generated
files, so both tools run the same code and tests can run it directly.
Runs with cwd set to the generated project. Safe to run again (copier runs it after updates).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

FIRST_COMMIT = "Initial commit from mlops-blueprint"


def quiet(
    command: list[str], root: Path, *, check: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=root, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def prune_empty_dirs(root: Path) -> None:
    """Conditional files render to an empty name and vanish; drop the folders they leave."""
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if ".git" not in folder.parts and not any(folder.iterdir()):
            folder.rmdir()


def lock(root: Path) -> None:
    """Write uv.lock so the first `make install` is reproducible; skipped if uv is missing."""
    uv = shutil.which("uv")
    if uv is None or os.environ.get("BLUEPRINT_SKIP_LOCK") == "1":
        print("note: uv.lock not written (uv not found); `make install` will create it")
        return
    done = quiet([uv, "lock", "--quiet"], root)
    if done.returncode != 0:
        print(f"warning: `uv lock` failed, run it yourself:\n{done.stderr}", file=sys.stderr)


def inside_git_repo(root: Path) -> bool:
    return quiet(["git", "rev-parse", "--git-dir"], root).returncode == 0


def first_commit(root: Path) -> None:
    """git init + a first commit, signed with the project's author if git has no identity."""
    author = tomllib.loads((root / "pyproject.toml").read_text())["project"]["authors"][0]
    identity = []
    for key, value in (("user.name", author["name"]), ("user.email", author["email"])):
        if quiet(["git", "config", key], root).returncode != 0:
            identity += ["-c", f"{key}={value}"]
    for command in (
        ["git", "init", "--quiet", "--initial-branch=main"],
        ["git", "add", "--all"],
        ["git", *identity, "commit", "--quiet", "--no-verify", "-m", FIRST_COMMIT],
    ):
        quiet(command, root, check=True)


def main() -> None:
    root = Path.cwd()
    prune_empty_dirs(root)
    lock(root)
    if shutil.which("git") is None:
        print("note: git not found; run `git init` yourself")
    elif not inside_git_repo(root):
        first_commit(root)


if __name__ == "__main__":
    main()
