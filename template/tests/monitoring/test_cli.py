"""The loop's commands, run as a user runs them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.monitoring.cli import DRIFT_EXIT
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.prediction_log import segment_name

from .conftest import CHAMPION, LogTraffic
from .test_log_store import record, write_segment


def test_compact_log(make_project: Callable[..., Path], contract: Contract) -> None:
    log_dir = make_project() / "logs" / "predictions"
    log_dir.mkdir(parents=True)
    rotated = segment_name(datetime.now(UTC) - timedelta(minutes=5), 7)
    write_segment(log_dir, rotated, [record(contract, 0, 2), record(contract, 1, 3)])
    result = CliRunner().invoke(app, ["compact-log"])
    assert result.exit_code == 0, result.output
    assert "1 segment(s) compacted to Parquet (5 rows)" in result.output
    assert (log_dir / rotated).with_suffix(".parquet").is_file()


def test_compact_log_names_a_bad_setting(make_project: Callable[..., Path]) -> None:
    params = make_project() / "params.yaml"
    values = yaml.safe_load(params.read_text())
    values["monitoring"]["log"]["retention_days"] = 0
    params.write_text(yaml.safe_dump(values))
    result = CliRunner().invoke(app, ["compact-log"])
    assert result.exit_code == 1
    assert "retention_days" in result.output


def test_monitor_exit_codes(
    project: Path, log_traffic: LogTraffic, contract: Contract, tmp_path: Path
) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["monitor", "--fail-on-drift"])
    assert empty.exit_code == 0, empty.output
    assert "No traffic in window" in empty.output

    table = make_sample(contract, 300, seed=31)
    table["age"] = 90
    log_traffic(table)
    drifted = runner.invoke(app, ["monitor", "--last", "5", "--out-dir", str(tmp_path)])
    assert drifted.exit_code == 0, drifted.output
    assert "drifted features: age" in drifted.output
    assert json.loads((tmp_path / "drift.json").read_text())["window"]["requests"] == 5
    failing = runner.invoke(app, ["monitor", "--fail-on-drift"])
    assert failing.exit_code == DRIFT_EXIT
    assert (project / "reports" / "drift.html").is_file()


def test_monitor_names_what_is_wrong(project: Path) -> None:
    shutil.rmtree(project / CHAMPION)
    result = CliRunner().invoke(app, ["monitor"])
    assert result.exit_code == 1
    assert "metadata.json: no exported champion" in result.output


def test_monitor_window_flags(project: Path, log_traffic: LogTraffic, contract: Contract) -> None:
    log_traffic(make_sample(contract, 200, seed=32))
    runner = CliRunner()
    now = datetime.now(UTC)
    inside = runner.invoke(app, ["monitor", "--since", (now - timedelta(hours=2)).isoformat()])
    assert "of 8 requests" in inside.output, inside.output
    # Without a zone a time is UTC: a window of 2000 holds nothing.
    before = runner.invoke(app, ["monitor", "--since", "2000-01-01", "--until", "2000-01-02T00:00"])
    assert before.exit_code == 0
    assert "No traffic in window" in before.output
    bad = runner.invoke(app, ["monitor", "--since", "yesterday"])
    assert bad.exit_code == 2
    assert "--since" in bad.output
