"""The second half of `make demo`: `make loop-demo` closes the loop in the default project,
then the team commits what it made and the retrain workflow runs on it.

Serve the champion, send traffic that drifts in a known way, monitor it, receive new labelled
data, retrain through the same contract and gate, and swap a promoted champion into the
running service with no failed request. Then, on that drifted log, the steps of retrain.yml in
its order: new labelled rows, monitor, retrain, the commit on a branch of its own through the
git hooks; a clone of that branch reproduces. The test holds the project for its whole run: the
loop changes the raw table, the registry and the exported champion.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from projects import Demo, commit_outputs, registry_state, sh
from workflows import run_make_lines

pytestmark = pytest.mark.slow


def test_make_loop_demo_closes_the_loop(demo_alone: Demo) -> None:
    project = demo_alone.project
    before = registry_state(project)
    audit_lines = len((project / "reports" / "audit.jsonl").read_text().splitlines())
    start = time.monotonic()
    done = sh(["make", "loop-demo"], project, check=False)
    said = done.stdout + done.stderr
    print(f"make loop-demo took {time.monotonic() - start:.0f} s\n{said[-4000:]}")
    assert done.returncode == 0, said

    # Each of the seven steps was printed, in order.
    steps = [int(n) for n in re.findall(r"^\[(\d)/7\]", done.stdout, re.MULTILINE)]
    assert steps == [1, 2, 3, 4, 5, 6, 7], done.stdout

    # The monitor flagged the shifted feature and no other.
    drift = json.loads((project / "reports" / "drift.json").read_text())
    assert drift["verdict"] == "drift"
    assert drift["drifted_features"] == ["loan_amount"]

    # The retrain was recorded with its trigger and the report behind it.
    audit = [
        json.loads(line)
        for line in (project / "reports" / "audit.jsonl").read_text().splitlines()[audit_lines:]
    ]
    retrains = [entry for entry in audit if entry["event"] == "retrain"]
    assert len(retrains) == 1, audit
    assert retrains[0]["reason"] == "drift"
    assert "drift.json" in json.dumps(retrains[0])

    # The gate decided, and the registry and the service agree with it.
    decision = json.loads((project / "reports" / "decision.json").read_text())
    after = registry_state(project)
    champion = json.loads((project / "models" / "champion" / "metadata.json").read_text())
    if decision["promoted"]:
        assert after["versions"] == [*before["versions"], int(decision["version"])]
        assert after["aliases"]["champion"] == decision["version"]
    else:
        assert after["aliases"]["champion"] == before["aliases"]["champion"]
    assert champion["version"] == after["aliases"]["champion"]
    assert f"serving v{after['aliases']['champion']};" in done.stdout
    assert re.search(r"\b\d+ requests during the retrain, 0 failed", done.stdout), done.stdout

    # What the README says to commit after the loop, through the hooks, with no uv on PATH.
    committed = commit_outputs(project, "The loop's retrain")
    assert committed.returncode == 0, committed.stdout + committed.stderr

    check_the_retrain_workflow(project)


# Labelled rows from the field, in the project's environment: the drifted kind the loop served,
# with ids no earlier row has.
NEW_ROWS = """
import pandas as pd
from credit_risk.config import load_params
from credit_risk.data import make_sample, read_table, write_table
from credit_risk.schema import Contract

params = load_params()
contract = Contract.load(params.data.contract)
first = 1 + int(pd.to_numeric(read_table(params.data.raw)[contract.id]).max())
rows = make_sample(contract, 1000, 99, loan_scale=2.0, first_id=first)
write_table(rows, params.monitoring.retrain.inbox / "from-the-field.csv")
"""
RETRAIN_STEPS = [
    "make install",
    "make pull export-model",
    'make retrain-branch PR_BODY="$RUNNER_TEMP/body.md"',
]


def check_the_retrain_workflow(project: Path) -> None:
    workflow = project / ".github" / "workflows" / "retrain.yml"
    values = {"MLFLOW_TRACKING_URI": "", "REASON": "drift", "BRANCH": "retrain/1"}
    head = sh(["git", "rev-parse", "HEAD"], project).stdout

    # Nothing new (no labelled rows, the pipeline as committed): no branch, nothing committed.
    idle = run_make_lines(workflow, "retrain", project, values | {"REASON": "schedule"})
    assert [line for line, _ in idle] == RETRAIN_STEPS
    said = "".join(done.stdout + done.stderr for _, done in idle)
    assert all(done.returncode == 0 for _, done in idle), said
    assert "nothing new: the data and the pipeline are as committed; no branch" in said
    assert sh(["git", "rev-parse", "HEAD"], project).stdout == head
    runner = project.parent / "retrain-retrain-runner"
    assert "branch=" not in (runner / "output").read_text(), "an output for a branch not made"

    sh([str(project / ".venv" / "bin" / "python"), "-c", NEW_ROWS], project)
    start = time.monotonic()
    ran = run_make_lines(workflow, "retrain", project, values)
    said = "".join(done.stdout + done.stderr for _, done in ran)
    print(f"retrain.yml's steps took {time.monotonic() - start:.0f} s\n{said[-3000:]}")
    assert all(done.returncode == 0 for _, done in ran), said

    # The branch's one commit: the new data, the pipeline state and the reports, through the
    # hooks; its title and the pull request's body for the steps that need GitHub.
    assert sh(["git", "branch", "--show-current"], project).stdout.strip() == "retrain/1"
    assert sh(["git", "rev-parse", "HEAD~1"], project).stdout == head
    subject = sh(["git", "log", "-1", "--format=%s"], project).stdout.strip()
    files = sh(["git", "show", "--name-only", "--format=", "HEAD"], project).stdout.split()
    decision = json.loads((project / "reports" / "decision.json").read_text())
    title = f"Retrain (drift): {decision['outcome']} v{decision['version']}"
    assert subject == title
    changed = ("data/raw/credit.csv.dvc", "dvc.lock", "reports/drift.json", "reports/audit.jsonl")
    for path in changed:
        assert path in files, files
    outputs = (runner / "output").read_text()
    assert f"branch=retrain/1\ntitle={title}\n" in outputs
    body = (runner / "body.md").read_text()
    assert "1000 new rows" in body, body
    assert "| **roc_auc** (gate) |" in body, body
    assert not sh(["git", "status", "--porcelain", "--", "*.dvc", "dvc.lock"], project).stdout

    # A colleague's clone of the branch: the data from the remote, and nothing to run again.
    clone = project.parent / "retrain-review"
    sh(["git", "clone", "--quiet", "--branch", "retrain/1", str(project), str(clone)], project)
    dvc = str(project / ".venv" / "bin" / "dvc")
    sh([dvc, "pull", "--quiet"], clone)
    reproduced = sh([dvc, "repro"], clone)
    assert "Data and pipelines are up to date." in reproduced.stdout + reproduced.stderr

    # The pull request merged: the project goes on from there.
    sh(["git", "switch", "--quiet", "-"], project)
    sh(["git", "merge", "--quiet", "--ff-only", "retrain/1"], project)
