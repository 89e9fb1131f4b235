"""The generated workflows as their runners walk them: thin YAML over the Makefile's targets.

Every matrix row's workflows are held to the rule (test_generated_projects.py, `thick_lines`);
here the rule itself is shown to refuse work done in YAML and a dispatch's value handed to
make to expand, and ci.yml's pipeline job runs its
targets in order on a fresh clone of the default project, as a pull request's runner would.
retrain.yml's job runs in test_loop.py, on the log the loop leaves.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from projects import DEMO, Demo, locked, sh
from workflows import THIN, injectable_lines, run_make_lines

WORK_IN_YAML = (
    "uv run --no-sync dvc pull",
    "sudo apt-get install -y redis-server",
    "version=$(jq -r .version models/champion/metadata.json)",
    "if git diff --quiet; then exit 0; fi",
    'echo "done" > notes.txt',
    "make lint; rm -rf reports",
    "make lint && rm -rf reports",
    'git diff --stat | tee "$GITHUB_STEP_SUMMARY"',
    'echo "version=$(jq -r .version m.json)" >> "$GITHUB_OUTPUT"',
)
GITHUB_ONLY = (
    "make pipeline REPRO_FLAGS=--force",
    'git push "https://x-access-token:$GH_TOKEN@github.com/$GITHUB_REPOSITORY.git" "$BRANCH"',
    'gh pr create --base "$BASE" --head "$BRANCH" --title "$TITLE" --body-file "$RUNNER_TEMP/b"',
    'echo "version=$VERSION" >> "$GITHUB_OUTPUT"',
)


def test_the_rule_refuses_work_in_yaml() -> None:
    assert [line for line in WORK_IN_YAML if THIN.fullmatch(line)] == []
    assert [line for line in GITHUB_ONLY if not THIN.fullmatch(line)] == []


def test_a_dispatch_value_never_reaches_make_as_an_assignment(tmp_path: Path) -> None:
    workflow = tmp_path / "retrain.yml"
    steps = [
        {"name": name, "env": {"REASON": "${{ github.event.client_payload.reason }}"}, "run": run}
        for name, run in [
            ("assigned", 'make retrain REASON="$REASON"'),
            ("braced", "make retrain REASON=${REASON}"),
            ("through the environment", "make retrain"),
            ("to GitHub", 'echo "reason=$REASON" >> "$GITHUB_OUTPUT"'),
        ]
    ]
    trusted = {"name": "ours", "env": {"BRANCH": "retrain/${{ github.run_id }}"}}
    steps.append({**trusted, "run": 'make retrain-branch BRANCH="$BRANCH"'})
    workflow.write_text(yaml.safe_dump({"jobs": {"retrain": {"steps": steps}}}))
    assert injectable_lines(workflow) == [
        'retrain.yml: retrain: assigned: make retrain REASON="$REASON"',
        "retrain.yml: retrain: braced: make retrain REASON=${REASON}",
    ]


PIPELINE_STEPS = [
    "make install",
    "make data",
    "make pipeline REPRO_FLAGS=--force",
    'make compare-metrics BASE="$BASE"',
]


@pytest.mark.slow
def test_ci_pipeline_job_on_a_fresh_clone(demo: Demo, shared: Path) -> None:
    # The runner's checkout: every commit (fetch-depth 0), the base branch as origin's.
    clone = demo.project.parent / "ci-pipeline"
    with locked(shared, DEMO):
        sh(["git", "clone", "--quiet", str(demo.project), str(clone)], demo.project.parent)
    branch = sh(["git", "branch", "--show-current"], clone).stdout.strip()
    workflow = clone / ".github" / "workflows" / "ci.yml"

    start = time.monotonic()
    ran = run_make_lines(workflow, "pipeline", clone, {"BASE": f"origin/{branch}"})
    said = "".join(done.stdout + done.stderr for _, done in ran)
    print(f"ci.yml's pipeline job took {time.monotonic() - start:.0f} s\n{said[-3000:]}")
    assert [line for line, _ in ran] == PIPELINE_STEPS
    assert all(done.returncode == 0 for _, done in ran), said

    # The data came from the DVC remote; every stage ran, the validation gate first; the
    # metrics were compared with the base branch's committed ones by the gate's rule.
    assert "unreachable" not in said
    stages = [line for line in said.splitlines() if line.startswith("Running stage")]
    assert stages[0] == "Running stage 'validate':", stages
    summary = (clone.parent / "ci-pipeline-runner" / "summary.md").read_text()
    assert f"### Metrics against origin/{branch}" in summary
    assert f"Not worse than origin/{branch}" in summary
