"""The trigger's pieces: one retrain slot (a real flock), and the drift report it names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.monitoring.trigger import (
    AlreadyRunningError,
    Reason,
    ReportError,
    Trigger,
    acquire_lock,
    read_report,
)


def test_one_retrain_slot(tmp_path: Path) -> None:
    lock_file = tmp_path / "logs" / "retrain.lock"
    first = acquire_lock(lock_file)
    with pytest.raises(AlreadyRunningError, match=f"already running \\(pid {os.getpid()} since"):
        acquire_lock(lock_file)
    first.close()
    acquire_lock(lock_file).close()  # free again once the first one ends


def test_the_report_is_recorded_with_the_trigger(tmp_path: Path) -> None:
    report = tmp_path / "drift.json"
    report.write_text(
        json.dumps({"verdict": "drift", "drifted_features": ["age"], "model_version": "3"})
    )
    described = Trigger(Reason.DRIFT, report).describe()
    assert described["reason"] == "drift"
    assert described["report"]["path"] == str(report)
    assert described["report"]["verdict"] == "drift"
    assert described["report"]["drifted_features"] == ["age"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "drift report not found"),
        ("{not json", "not a JSON drift report"),
        ('{"verdict": "maybe"}', "not a drift report: verdict"),
    ],
    ids=["missing", "not-json", "bad-verdict"],
)
def test_a_bad_report_is_named(tmp_path: Path, content: str | None, message: str) -> None:
    report = tmp_path / "drift.json"
    if content is not None:
        report.write_text(content)
    with pytest.raises(ReportError, match=message) as error:
        read_report(report)
    assert str(report) in str(error.value)
