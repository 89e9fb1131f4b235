"""commit-retrain's pieces: the pull request it asks for, and the branch in a real git repo
(`make retrain-branch` runs whole in the template's suite, hooks on)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.monitoring.branch import (
    BranchError,
    changed,
    commit_on_branch,
    last_retrain,
    proposal,
)

PROMOTED = {
    "event": "retrain",
    "reason": "drift",
    "outcome": "promoted",
    "model_version": "4",
    "decision_reasons": ["roc_auc 0.86 >= minimum 0.75", "fairness gaps within bounds"],
    "inbox": {"files": ["a.csv"], "rows_added": 120, "rows_replaced": 3},
}


def test_the_proposal_says_why_what_and_the_gate() -> None:
    said = proposal(PROMOTED, "### Metrics against HEAD\n")
    assert said.title == "Retrain (drift): promoted v4"
    assert said.body.splitlines() == [
        "Retrain triggered by **drift**: promoted v4 (120 new rows, 3 replaced).",
        "",
        "- roc_auc 0.86 >= minimum 0.75",
        "- fairness gaps within bounds",
        "",
        "### Metrics against HEAD",
    ]


def test_the_newest_retrain_is_the_one_proposed(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    with pytest.raises(BranchError, match="has no retrain: run `make retrain` first"):
        last_retrain(audit)
    older = {**PROMOTED, "model_version": "3"}
    decision = {"event": "promotion_decision", "outcome": "promoted", "version": "4"}
    audit.write_text("".join(json.dumps(e) + "\n" for e in (older, PROMOTED, decision)))
    assert last_retrain(audit)["model_version"] == "4"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def test_only_the_data_and_the_pipeline_make_a_branch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _git("init", "--quiet", "--initial-branch", "main")
    _git("config", "user.email", "tests@example.com")
    _git("config", "user.name", "Tests")
    Path("dvc.lock").write_text("stages: {}\n")
    Path("notes.md").write_text("a team's notes\n")
    _git("add", ".")
    _git("commit", "--quiet", "--message", "start")

    Path("notes.md").write_text("edited, not the retrain's\n")
    assert not changed()

    Path("reports").mkdir()
    Path("reports/decision.json").write_text("{}\n")
    Path("dvc.lock").write_text("stages: {train: {}}\n")
    assert changed()
    commit_on_branch("retrain/7", "Retrain (drift): promoted v4")
    assert _git("branch", "--show-current").strip() == "retrain/7"
    assert _git("log", "-1", "--format=%s").strip() == "Retrain (drift): promoted v4"
    committed = _git("show", "--name-only", "--format=", "HEAD").split()
    assert committed == ["dvc.lock", "reports/decision.json"], "a file not the retrain's went in"

    with pytest.raises(BranchError, match="`git switch --create retrain/7` failed"):
        commit_on_branch("retrain/7", "again")
