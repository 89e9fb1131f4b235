"""compare-metrics: the CI's baseline check, on the shapes `dvc metrics diff --json --all`
writes (copied from real runs), through the command as CI runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import contract_file_for
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app

METRICS = "reports/metrics.json"


def binary_diff(old_auc: float | None, new_auc: float) -> dict[str, Any]:
    """A binary project's diff: roc_auc (the gate's metric) and pr_auc."""
    entries: dict[str, Any] = {
        "roc_auc": {"old": old_auc, "new": new_auc},
        "pr_auc": {"old": 0.646584, "new": 0.554957, "diff": -0.091627},
    }
    if old_auc is not None:  # DVC leaves `diff` out where one side has no value
        entries["roc_auc"]["diff"] = new_auc - old_auc
    return {METRICS: entries}


def run(
    make_project: Callable[..., Path], tmp_path: Path, kind: str, diff: Any, *args: str
) -> tuple[int, str, Path]:
    make_project(contract_file=contract_file_for(kind, tmp_path))
    diff_file = tmp_path / "diff.json"
    diff_file.write_text(diff if isinstance(diff, str) else json.dumps(diff))
    summary = tmp_path / "summary.md"
    result = CliRunner().invoke(
        app,
        ["compare-metrics", "--base", "main", "--diff-file", str(diff_file),
         "--summary", str(summary), *args],
    )  # fmt: skip
    return result.exit_code, result.output, summary


def test_worse_beyond_the_gate_tolerance_fails_with_the_table(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    code, output, summary = run(make_project, tmp_path, "binary", binary_diff(0.848712, 0.812503))
    assert code == 1, output
    assert "| **roc_auc** (gate) | 0.8487 | 0.8125 | -0.0362 |" in output
    assert "| pr_auc | 0.6466 | 0.5550 | -0.0916 |" in output
    assert (
        "**Worse than main:** `roc_auc` lost 0.0362, beyond the promotion gate's tolerance"
        in output
    )
    assert summary.read_text() == output


@pytest.mark.parametrize(
    ("new_auc", "verdict"),
    [(0.845, "lost 0.0037, within"), (0.848712, "held or improved"), (0.86, "held or improved")],
)
def test_within_tolerance_or_better_passes(
    make_project: Callable[..., Path], tmp_path: Path, new_auc: float, verdict: str
) -> None:
    code, output, _ = run(make_project, tmp_path, "binary", binary_diff(0.848712, new_auc))
    assert code == 0, output
    assert f"Not worse than main: `roc_auc` {verdict}" in output


def test_lower_is_better_follows_the_gate(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    """Regression gates on rmse: a higher rmse is the worse model, a lower one passes."""
    worse = {METRICS: {"rmse": {"old": 900.0, "new": 950.0, "diff": 50.0}}}
    code, output, _ = run(make_project, tmp_path, "regression", worse)
    assert code == 1, output
    assert "`rmse` lost 50.0000" in output
    better = {METRICS: {"rmse": {"old": 900.0, "new": 850.0, "diff": -50.0}}}
    assert run(make_project, tmp_path, "regression", better)[0] == 0


def test_no_baseline_is_said_and_passes(make_project: Callable[..., Path], tmp_path: Path) -> None:
    code, output, _ = run(make_project, tmp_path, "binary", binary_diff(None, 0.81))
    assert code == 0, output
    assert "| **roc_auc** (gate) | - | 0.8100 | - |" in output
    assert "main has no `roc_auc` to compare with: nothing to gate." in output


@pytest.mark.parametrize(
    ("diff", "message"),
    [
        ("{not json", "diff.json is not JSON"),
        ({}, "reports/metrics.json has no roc_auc in this work tree"),
        ({METRICS: {"roc_auc": {"old": 0.8, "new": None}}}, "has no roc_auc in this work tree"),
        ({METRICS: {"roc_auc": 0.8}}, "reports/metrics.json: roc_auc: expected old and new"),
    ],
)
def test_bad_diff_is_an_error_naming_it(
    make_project: Callable[..., Path], tmp_path: Path, diff: Any, message: str
) -> None:
    code, output, _ = run(make_project, tmp_path, "binary", diff)
    assert code == 1
    assert output.startswith("error: ")
    assert message in output


def test_dvc_failure_is_an_error(make_project: Callable[..., Path]) -> None:
    """Outside a DVC repository `dvc metrics diff` fails: its message comes through."""
    make_project()
    result = CliRunner().invoke(app, ["compare-metrics", "--base", "main"])
    assert result.exit_code == 1
    assert "error: `dvc metrics diff main` failed" in result.output
