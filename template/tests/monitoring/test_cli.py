"""The loop's commands, run as a user runs them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.prediction_log import segment_name

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
