"""Finish a freshly generated project: run by cookiecutter and by copier's `_tasks`.

Plain Python but for one line: cookiecutter renders the answers into `RENDERED`, copier's task
passes them as the first argument instead. Both tools run the same code, and tests run it
directly. Runs with cwd set to the generated project. Safe to run again (copier runs it after
updates, and on the old and new renders it compares).

`OPTIONAL_PARTS` is the one place where an optional part of the project is switched: the
template tree holds every part, and this hook removes the parts the answers leave out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

FIRST_COMMIT = "Initial commit from mlops-blueprint"
RENDERED = r"""{{ cookiecutter | tojson }}"""

Answers = Mapping[str, Any]


def truthy(value: Any) -> bool:
    """cookiecutter may hand a bool over as text."""
    return value is True or str(value).lower() in {"true", "yes", "y", "1", "on"}


# part -> (whether the answers want it, its paths; `{package}` is the import name).
# A path inside another part's folder belongs to the narrower part (bench/check_image.py).
OPTIONAL_PARTS: dict[str, tuple[Callable[[Answers], bool], tuple[str, ...]]] = {
    "serving": (
        lambda a: truthy(a["include_serving"]),
        (
            "src/{package}/serving",
            "src/{package}/delivery",
            "tests/serving",
            "tests/delivery",
            "bench",
        ),
    ),
    "container": (
        lambda a: a["deployment"] != "none",
        (
            "Dockerfile",
            ".dockerignore",
            "bench/check_image.py",
            "deploy/compose.yaml",
            "deploy/stack",
            ".github/workflows/cd.yml",
        ),
    ),
    "kubernetes": (
        lambda a: a["deployment"] == "kubernetes",
        (
            "deploy/k8s",
            "deploy/kserve",
            "tests/deploy",
            "src/{package}/delivery/manifests.py",
            "src/{package}/delivery/slots.py",
            "tests/delivery/test_slots.py",
            # KServe's client is in the `deploy` group, which only this part has.
            "tests/serving/test_v2_kserve.py",
        ),
    ),
    "github-ci": (lambda a: a["ci"] == "github", (".github",)),
    "monitoring": (
        lambda a: truthy(a["include_monitoring"]),
        (
            "src/{package}/monitoring",
            "tests/monitoring",
            "monitoring",
            ".github/workflows/retrain.yml",
            "bench/drift.py",
            "bench/evidently_drift.py",
        ),
    ),
    "spark": (
        lambda a: a["scale_out"] == "spark",
        (
            "src/{package}/spark",
            "src/{package}/monitoring/spark.py",
            "tests/spark",
            "tests/monitoring/test_spark.py",
            "bench/spark.py",
            "deploy/k8s/spark",
            "tests/deploy/test_spark_job.py",
        ),
    ),
}


def read_answers(argv: list[str]) -> dict[str, Any]:
    answers: dict[str, Any] = json.loads(argv[1] if len(argv) > 1 else RENDERED)
    return answers


def unwanted(answers: Answers) -> list[str]:
    """Relative paths of the parts the answers leave out, deepest first."""
    owner: dict[str, bool] = {}
    for wanted, paths in OPTIONAL_PARTS.values():
        keep = wanted(answers)
        for path in paths:
            owner[path.format(package=answers["package_name"])] = keep
    return sorted((path for path, keep in owner.items() if not keep), key=len, reverse=True)


def remove_parts(root: Path, answers: Answers) -> None:
    for relative in unwanted(answers):
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    prune_empty_dirs(root)


def quiet(
    command: list[str], root: Path, *, check: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=root, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def prune_empty_dirs(root: Path) -> None:
    """Drop folders a removed part leaves empty (and ones cookiecutter makes for empty names)."""
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


def main(argv: list[str]) -> None:
    root = Path.cwd()
    remove_parts(root, read_answers(argv))
    lock(root)
    if shutil.which("git") is None:
        print("note: git not found; run `git init` yourself")
    elif not inside_git_repo(root):
        first_commit(root)


if __name__ == "__main__":
    main(sys.argv)
