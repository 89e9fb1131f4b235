"""Generated workflows are thin: their `run:` steps call the project's task list, nothing else.

The one rule, written once: a line of a `run:` block is `make …`, `git …`, `gh …`, or an
`echo` appended to one of GitHub's own files (outputs, step summary, environment). Anything
else is work that no Makefile target covers, so no person, hook or test can run it the way the
workflow does. The suite runs the `make` lines of each workflow in order (`run_make_lines`).
A `make` line never passes a dispatch's value as an assignment (`injectable_lines`).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from projects import sh

# One command a line: no `;`, `&&`, pipes, redirections or command substitution smuggling
# other work in (but the echo's one append to GitHub's file).
_ONE_COMMAND = r"(?:(?![;&|<>`]|\$\().)+"
THIN = re.compile(
    rf"(make|git|gh) {_ONE_COMMAND}"
    rf'|echo {_ONE_COMMAND} >> "\$GITHUB_(OUTPUT|STEP_SUMMARY|ENV)"'
)


def run_lines(step: dict[str, Any]) -> list[str]:
    """The commands of a step's `run:` block, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", step.get("run", ""))
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def jobs(workflow: Path) -> dict[str, Any]:
    jobs: dict[str, Any] = yaml.safe_load(workflow.read_text())["jobs"]
    return jobs


def thick_lines(workflow: Path) -> list[str]:
    """Every `run:` line of the workflow that breaks the rule, named by job and step."""
    return [
        f"{workflow.name}: {job}: {step.get('name', '?')}: {line}"
        for job, spec in jobs(workflow).items()
        for step in spec.get("steps", [])
        for line in run_lines(step)
        if not THIN.fullmatch(line)
    ]


# A value anyone who can dispatch a workflow writes (its inputs, an event's payload). make
# expands `$(...)` in a command-line assignment, `make X="$VALUE"`, so such a value reaches a
# target only through the step's `env:`, where make leaves it alone and its recipe reads `$$X`.
UNTRUSTED = re.compile(r"\$\{\{[^}]*\b(inputs|github\.event)\.")


def injectable_lines(workflow: Path) -> list[str]:
    """Every `make` line that hands make a dispatch's value to expand."""
    found = []
    for job, spec in jobs(workflow).items():
        for step in spec.get("steps", []):
            env = step.get("env", {})
            names = [name for name, value in env.items() if UNTRUSTED.search(str(value))]
            for line in run_lines(step):
                passed = [n for n in names if re.search(rf'=("?)\$\{{?{n}\b', line)]
                if line.startswith("make ") and passed:
                    found.append(f"{workflow.name}: {job}: {step.get('name', '?')}: {line}")
    return found


def make_lines(workflow: Path, job: str) -> list[tuple[dict[str, Any], str]]:
    """The job's `make` lines in the order it runs them, each with its step."""
    return [
        (step, line)
        for step in jobs(workflow)[job]["steps"]
        for line in run_lines(step)
        if line.startswith("make ")
    ]


def run_make_lines(
    workflow: Path,
    job: str,
    project: Path,
    values: dict[str, str],
    env: dict[str, str] | None = None,
) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
    """The job's `make` lines run in order in `project`, as its runner would: each with its
    step's `env:`, where `values` gives what the runner gets from `${{ }}` (secrets, inputs,
    events), and GitHub's files (outputs, summary, RUNNER_TEMP) under `project`'s parent;
    `env` is the test's own (where the runner's machine differs from this one).
    Stops at the first line that fails; returns what ran."""
    github = project.parent / f"{workflow.stem}-{job}-runner"
    github.mkdir(exist_ok=True)
    for name in ("output", "summary.md"):  # each run starts with empty ones, as on GitHub
        (github / name).write_text("")
    files = {
        "GITHUB_OUTPUT": str(github / "output"),
        "GITHUB_STEP_SUMMARY": str(github / "summary.md"),
        "RUNNER_TEMP": str(github),
    }
    ran: list[tuple[str, subprocess.CompletedProcess[str]]] = []
    for step, line in make_lines(workflow, job):
        given = {**files, **(env or {})}
        for name, value in step.get("env", {}).items():
            if "${{" not in str(value):
                given[name] = str(value)
            elif name in values:
                given[name] = values[name]
            else:
                raise AssertionError(f"{workflow.name}: {step.get('name')}: no value for {name}")
        done = sh(["bash", "-c", line], project, env=given, check=False)
        ran.append((line, done))
        if done.returncode != 0:
            break
    return ran
