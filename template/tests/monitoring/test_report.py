"""The three renderings: strict JSON, Markdown for a pull request, one self-contained page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import load_params
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.monitoring.monitor import monitor
from {{ cookiecutter.package_name }}.monitoring.report import to_html, to_json, to_markdown, write_reports
from {{ cookiecutter.package_name }}.schema import Contract

from .conftest import CHAMPION, LogTraffic


def run(project: Path, **options: Any) -> dict[str, Any]:
    return monitor(load_params(project / "params.yaml"), project / CHAMPION, **options)


@pytest.fixture
def drifted(project: Path, log_traffic: LogTraffic, contract: Contract) -> dict[str, Any]:
    table = make_sample(contract, 600, seed=21)
    table["loan_amount"] *= 3
    ids = log_traffic(table, per_request=1)
    labels = pd.DataFrame({"request_id": ids, contract.target.name: table[contract.target.name]})
    labels.assign(loss=1.5).to_parquet(project / "labels.parquet")
    return run(project, labels=project / "labels.parquet")


def test_three_files_and_strict_json(drifted: dict[str, Any], tmp_path: Path) -> None:
    paths = write_reports(drifted, tmp_path / "reports")
    assert [p.name for p in paths] == ["drift.json", "drift.md", "drift.html"]

    def no_nan(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    written = json.loads(paths[0].read_text(), parse_constant=no_nan)
    assert written["verdict"] == "drift"
    assert written["drifted_features"] == ["loan_amount"]
    assert {"model_version", "window", "checks", "concept"} <= set(written)
    assert written["concept"]["kpis"]["loss"] == {"sum": 900.0, "mean": 1.5}


def test_markdown_names_the_verdict_and_each_check(drifted: dict[str, Any]) -> None:
    text = to_markdown(drifted)
    assert text.startswith("# Drift report: Drift detected")
    assert "Drifted features: loan_amount" in text
    rows = [line for line in text.splitlines() if line.startswith("| loan_amount |")]
    assert rows
    assert "| drift | psi | psi " in rows[0]
    assert "| metric | live | champion (test) |" in text


def test_the_page_loads_nothing_and_shows_drift_first(drifted: dict[str, Any]) -> None:
    page = to_html(drifted)
    assert "Content-Security-Policy" in page
    for reference in ("<script", "src=", "href=", "url(", "@import", "<link"):
        assert reference not in page
    sections = re.findall(r"<section class='check (\w+)' data-name='([^']+)'", page)
    assert sections[0] == ("drift", "loan_amount")
    statuses = [status for status, _ in sections]
    assert statuses == sorted(statuses, key=lambda s: s != "drift")
    features = [check for check in drifted["checks"] if check["kind"] == "feature"]
    assert page.count("<svg") >= len(features)


def test_no_traffic_is_said_plainly(project: Path) -> None:
    report = run(project)
    assert "No traffic in window" in to_html(report)
    assert to_markdown(report).startswith("# Drift report: No traffic in window")
    assert json.loads(to_json(report))["verdict"] == "no_traffic"


def test_names_are_escaped(drifted: dict[str, Any]) -> None:
    check = {**drifted["checks"][0], "name": "<b>&"}
    page = to_html({**drifted, "checks": [check]})
    assert "<b>&" not in page
    assert "&lt;b&gt;&amp;" in page
