"""Start small, grow by answer, turn a part off again: `copier update -d ...` on one project.

Each test builds its template version with `snapshot_template`, tagged `v0.1.0` (copier updates
only from a PEP 440 tag), and never uses the checkout's tags or history.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from blueprint import BIN, SKIP_LOCK, commit_all, copier_copy, run, snapshot_template, tree

VERSION = "v0.1.0"
SMALLEST = {
    "include_serving": False,
    "include_monitoring": False,
    "deployment": "none",
    "scale_out": "none",
}
FULLEST = {
    "include_serving": True,
    "include_monitoring": True,
    "deployment": "kubernetes",
    "scale_out": "spark",
}
UPDATE = ["copier", "update", "--trust", "--defaults"]
# The fresh render made before each update filled uv's cache with what the update's locks need.
OFFLINE = {"UV_OFFLINE": "1"}
TEAM_MODULE = (
    "src/credit_risk/bonus.py",
    "def score_bonus(points: int) -> int:\n    return points * 2\n",
)
TEAM_NOTE = "\n## Team notes\n\nOn-call: #risk-ml.\n"
NOT_COMPARED = (".git", "uv.lock")  # the lock is compared by its packages (locked_packages)


def as_flags(answers: Mapping[str, Any]) -> list[str]:
    """`-d name=value` for each answer, as copier's message after an update prints them."""
    return [f"-d {name}={str(value).lower()}" for name, value in answers.items()]


def update(
    project: Path, answers: Mapping[str, Any], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`copier update` with changed answers (its message after the update is on stderr)."""
    command = [str(BIN / UPDATE[0]), *UPDATE[1:]]
    command += [part for flag in as_flags(answers) for part in flag.split(" ", 1)]
    return run(command, project, check=check, env=OFFLINE)


def opt_in_lines(message: str) -> set[str]:
    return {line.strip() for line in message.splitlines() if line.strip().startswith(UPDATE[0])}


def differences(made: Mapping[str, bytes], fresh: Mapping[str, bytes]) -> list[str]:
    """Paths in only one of the trees, or with other bytes."""
    return sorted(path for path in made.keys() | fresh.keys() if made.get(path) != fresh.get(path))


def empty_folders(root: Path) -> list[Path]:
    """Folders a removed part left behind (a tree of files cannot show them)."""
    folders = (path for path in root.rglob("*") if path.is_dir() and ".git" not in path.parts)
    return [folder for folder in folders if not any(folder.iterdir())]


def locked_packages(project: Path) -> list[dict[str, Any]]:
    """uv.lock's packages without their fork markers.

    uv re-locks an existing lock incrementally and keeps the forks it first split the
    resolution into (`resolution-markers`); a fresh lock may split by other markers. Packages,
    versions, sources, hashes and dependencies are what an install gets: those must agree.
    """
    lock = tomllib.loads((project / "uv.lock").read_text())
    return [{k: v for k, v in p.items() if k != "resolution-markers"} for p in lock["package"]]


def team_edits(project: Path) -> None:
    path, module = TEAM_MODULE
    (project / path).write_text(module)
    with (project / "README.md").open("a") as readme:
        readme.write(TEAM_NOTE)
    commit_all(project, "Team edits")


@pytest.mark.slow
def test_the_smallest_project_grows_to_the_fullest_by_its_answers(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "template", tag=VERSION)
    fresh = tmp_path / "fresh"
    copier_copy(template, fresh, FULLEST)
    project = tmp_path / "credit-risk"
    copier_copy(template, project, SMALLEST)
    team_edits(project)

    message = update(project, FULLEST).stderr

    grown, wanted = tree(project, skip=NOT_COMPARED), tree(fresh, skip=NOT_COMPARED)
    path, module = TEAM_MODULE
    assert grown.pop(path) == module.encode(), "the team's module was lost"
    assert grown["README.md"] == wanted["README.md"] + TEAM_NOTE.encode()
    grown["README.md"] = wanted["README.md"]
    # .copier-answers.yml is compared too: the same template commit and answers, byte for byte.
    assert differences(grown, wanted) == []
    assert locked_packages(project) == locked_packages(fresh)
    run([str(BIN / "uv"), "lock", "--locked", "--offline"], project)  # what CI's install checks
    assert opt_in_lines(message) == set(), "the message offers parts the project already has"

    # The fullest code on the oldest Python, kubernetes and spark included, runs nowhere else in
    # the suite (test_generated_projects.runs_its_code): lint all of it, the team's module too,
    # and run the tests of what kubernetes and spark add (the manifests, `render-manifests`,
    # the nightly Spark job; `--engine spark` on a standalone cluster against the one-process
    # commands). Its other tests are the default project's, which `make demo` runs on this
    # Python: the whole `make test` took 84 s here, the kubernetes tests 7 s.
    run(["make", "install"], project)
    run(["make", "lint"], project)
    added = "tests/deploy tests/spark tests/monitoring/test_spark.py tests/serving/test_batch.py"
    run(["make", "test"], project, env={"PYTEST_ADDOPTS": added})


# Answers that turn parts off, and the opt-in lines the message after the update prints then.
TURNED_OFF: dict[str, tuple[dict[str, Any], set[str]]] = {
    "monitoring": ({"include_monitoring": False}, {"-d include_monitoring=true"}),
    "deployment": ({"deployment": "none"}, {"-d deployment=docker", "-d deployment=kubernetes"}),
    "spark": ({"scale_out": "none"}, {"-d scale_out=spark"}),
    "everything": (
        SMALLEST,
        {
            "-d include_serving=true",
            "-d include_serving=true -d include_monitoring=true",
            "-d include_serving=true -d deployment=docker",
            "-d include_serving=true -d deployment=kubernetes",
            "-d include_serving=true -d scale_out=spark",
            # All of them: the very line the test above grows a project with.
            " ".join(as_flags(FULLEST)),
        },
    ),
}


@pytest.mark.slow
def test_parts_turn_off_cleanly_or_are_refused_saying_what_to_do(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "template", tag=VERSION)
    fullest = tmp_path / "fullest"
    copier_copy(template, fullest, FULLEST)
    head = run(["git", "rev-parse", "HEAD"], fullest).stdout

    # The service cannot go while the parts that need it stay: refused, naming the line that
    # works, and nothing written (copier validates before it renders into the project).
    done = update(fullest, {"include_serving": False}, check=False)
    assert done.returncode != 0
    refused = " ".join(done.stderr.split())
    assert "include_monitoring needs include_serving" in refused
    assert " ".join(as_flags(SMALLEST)) in refused
    assert run(["git", "status", "--porcelain", "--ignored"], fullest).stdout == ""
    assert run(["git", "rev-parse", "HEAD"], fullest).stdout == head

    for name, (answers, opt_in) in TURNED_OFF.items():
        project = tmp_path / name
        shutil.copytree(fullest, project, symlinks=True)
        message = update(project, answers).stderr
        fresh = tmp_path / f"{name}-fresh"
        copier_copy(template, fresh, {**FULLEST, **answers}, env={SKIP_LOCK: "1"})
        # Equal to a fresh project: no file of the part left, nothing else lost or changed.
        assert differences(tree(project, skip=NOT_COMPARED), tree(fresh, skip=NOT_COMPARED)) == []
        assert empty_folders(project) == []
        run([str(BIN / "uv"), "lock", "--locked", "--offline"], project)  # re-locked, not stale
        run([str(BIN / "ruff"), "check", "--no-cache", "."], project)
        run([str(BIN / "ruff"), "format", "--no-cache", "--check", "."], project)
        assert opt_in_lines(message) == {" ".join([*UPDATE, flags]) for flags in opt_in}
