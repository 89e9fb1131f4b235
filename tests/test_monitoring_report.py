"""The drift report of the default project, opened in a real browser with no network.

A prediction log with a known drift (the project's own sample generator, one column shifted,
scored by the exported champion as the service would) goes through `credit-risk monitor`.
The HTML page it writes must load with no failed request and no request beyond itself, and
show the shifted feature first, drawn. The log and the reports go to this test's own folder
(a copy of params.yaml points the monitor there), so the project itself is only read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from browser import visit
from projects import DEMO, Demo, locked, sh

pytestmark = pytest.mark.slow

SHIFTED = "loan_amount"
# Runs in the project's environment: 1,500 rows in requests of 25, logged as the service logs.
WRITE_LOG = """
import sys, uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
import orjson
from credit_risk.data import make_sample
from credit_risk.serving.model_store import load_model_dir

model = load_model_dir(Path("models/champion"))
contract = model.contract
table = make_sample(contract, 1500, seed=2026)
table[sys.argv[2]] *= 3
names = [contract.id, *contract.feature_names, *(c.name for c in contract.sensitive)]
scored = model.predict(contract.encode({n: table[n] for n in contract.feature_names}))
start = datetime.now(UTC) - timedelta(minutes=30)
lines = []
for first in range(0, len(table), 25):
    part = slice(first, first + 25)
    inputs = {n: table[n].iloc[part].astype(object).where(table[n].iloc[part].notna(), None)
              .tolist() for n in names}
    lines.append(orjson.dumps({
        "request_id": uuid.uuid4().hex,
        "timestamp": (start + timedelta(seconds=first)).isoformat(),
        "model_name": model.name, "model_version": model.version, "latency_ms": 1.0,
        "rows": 25, "inputs": inputs,
        "outputs": {"predictions": scored.predictions[part].tolist(), "classes": model.classes,
                    "probabilities": scored.probabilities[part]},
        "shadow": None,
    }, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE))
log = Path(sys.argv[1])
log.mkdir(parents=True)
(log / "predictions.jsonl").write_bytes(b"".join(lines) + b'{"request_id": "torn\\n')
"""
# Each check section as the page shows it: name, verdict, and how many bars its plot has.
SECTIONS = (
    "[...document.querySelectorAll('section.check')]"
    ".map(s => [s.dataset.name, s.dataset.status, s.querySelectorAll('svg rect').length])"
)


def test_the_drift_report_opens_offline_and_shows_the_drifted_feature_first(
    demo: Demo, shared: Path, tmp_path: Path
) -> None:
    project = demo.project
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["monitoring"]["log"]["directory"] = str(tmp_path / "log")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    python = str(project / ".venv" / "bin" / "python")
    reports = tmp_path / "reports"
    with locked(shared, DEMO):  # another test may be swapping the champion
        sh([python, "-c", WRITE_LOG, str(tmp_path / "log"), SHIFTED], project)
        done = sh(
            [
                str(project / ".venv" / "bin" / "credit-risk"),
                *("monitor", "--params", str(tmp_path / "params.yaml")),
                *("--out-dir", str(reports), "--fail-on-drift"),
            ],
            project,
            check=False,
        )
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"drifted features: {SHIFTED}" in done.stdout
    assert "1 corrupt log line(s) skipped" in done.stderr
    report = json.loads((reports / "drift.json").read_text())
    assert report["drifted_features"] == [SHIFTED]
    assert report["window"]["corrupt_lines"] == 1

    page = (reports / "drift.html").as_uri()
    seen = visit(page, SECTIONS, tmp_path / "profile")
    assert seen.requested == [page]
    assert seen.failed == []
    name, status, bars = seen.value[0]
    assert (name, status) == (SHIFTED, "drift")
    assert bars >= 10, "the drifted feature is not drawn"
    assert len(seen.value) == len(report["checks"])
