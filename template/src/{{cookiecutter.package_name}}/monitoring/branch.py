"""A retrain's outputs on a branch of their own, and its pull request's title and body.

The last step of `make retrain-branch` (monitor -> retrain -> this), so the retrain workflow
keeps only what needs GitHub: `git push` and `gh pr create`. The commit goes through the
project's git hooks like any other. A retrain that changed neither the data nor the pipeline
(no `.dvc` file, no `dvc.lock`) makes no branch.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..compare import by_the_gate, dvc_metrics_diff, markdown
from ..config import Params

# What a retrain changes: the data and pipeline state, which decides whether there is a branch,
# and the reports a reviewer reads.
STATE = ("*.dvc", "dvc.lock")
OUTPUTS = (*STATE, "reports")


class BranchError(RuntimeError):
    """The branch or its commit could not be made; the message names the git command."""


@dataclass(frozen=True)
class Proposal:
    title: str
    body: str


def last_retrain(audit: Path) -> dict[str, Any]:
    """The newest `retrain` line of the audit log."""
    lines = audit.read_text(encoding="utf-8").splitlines() if audit.is_file() else []
    for line in reversed(lines):
        entry: dict[str, Any] = json.loads(line)
        if entry.get("event") == "retrain":
            return entry
    raise BranchError(f"{audit} has no retrain: run `make retrain` first")


def proposal(entry: dict[str, Any], metrics: str) -> Proposal:
    outcome = " ".join(filter(None, [entry["outcome"], _version(entry)]))
    title = f"Retrain ({entry['reason']}): {outcome}"
    reasons = [f"- {reason}" for reason in entry.get("decision_reasons", [])]
    inbox = entry.get("inbox", {})
    data = f"{inbox.get('rows_added', 0)} new rows, {inbox.get('rows_replaced', 0)} replaced"
    body = [f"Retrain triggered by **{entry['reason']}**: {outcome} ({data}).", "", *reasons]
    return Proposal(title, "\n".join([*body, "", metrics]).strip() + "\n")


def _version(entry: dict[str, Any]) -> str:
    return f"v{entry['model_version']}" if entry.get("model_version") else ""


def changed() -> bool:
    """Whether the data or the pipeline differ from the last commit."""
    return bool(git("status", "--porcelain", "--", *STATE))


def propose(params: Params, audit: Path) -> Proposal:
    """The pull request the newest retrain asks for, its metrics against the last commit."""
    metrics = markdown(by_the_gate(dvc_metrics_diff("HEAD"), params, "HEAD"))
    return proposal(last_retrain(audit), metrics)


def commit_on_branch(branch: str, title: str) -> None:
    # Listed first: `git add` refuses a pattern that matches nothing (a project with no report).
    changes = ("--modified", "--deleted", "--others", "--exclude-standard")
    listed = git("ls-files", "-z", *changes, "--", *OUTPUTS)
    git("switch", "--create", branch)
    git("add", "--all", "--", *filter(None, listed.split("\0")))
    git("commit", "--quiet", "--message", title)


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)  # noqa: S603, S607 - git from PATH, as a person runs it
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip()
        raise BranchError(f"`git {' '.join(args)}` failed (exit {done.returncode}):\n{said}")
    return done.stdout
