"""`trace`: a request the service's writer logged, followed back to its data and that data's
validation report, from the JSONL log and after compaction; an unknown id explained."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.monitoring.log_store import compact, find_request
from {{ cookiecutter.package_name }}.monitoring.trace import no_such_request, trace
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.pii import PiiMask, pii_hash
from {{ cookiecutter.package_name }}.serving.prediction_log import (
    LOG_FILE_NAME,
    PredictionLog,
    lineage,
    segment_name,
)

from .conftest import LOG_DIR, RAW

EMAIL = "ines.novak42@example.org"


def _md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def _git(root: Path, *arguments: str) -> str:
    done = subprocess.run(["git", *arguments], cwd=root, capture_output=True, check=True)
    return done.stdout.decode().strip()


def _validated_project(root: Path) -> tuple[str, str]:
    """The raw table, its validation report and the dvc.lock that ties them, committed;
    returns (commit, data MD5)."""
    data = b"applicant_id,age\n1,40\n"
    (root / RAW).parent.mkdir(parents=True, exist_ok=True)
    (root / RAW).write_bytes(data)
    checks = [{"success": True}]
    report = json.dumps({"data": str(RAW), "rows": 1, "success": True, "checks": checks})
    (root / "reports").mkdir()
    (root / "reports/validation.json").write_text(report)
    lock = {
        "schema": "2.0",
        "stages": {
            "validate": {
                "cmd": "validate",
                "deps": [{"path": str(RAW), "md5": _md5(data)}],
                "outs": [{"path": "reports/validation.json", "md5": _md5(report.encode())}],
            }
        },
    }
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    _git(root, "init", "-q")
    _git(root, "add", "dvc.lock", "reports")
    author = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    _git(root, *author, "commit", "-q", "-m", "validated")
    return _git(root, "rev-parse", "HEAD"), _md5(data)


def _log_request(root: Path, contract: Contract, commit: str, data_hash: str) -> None:
    """One request through the service's own writer, as predict.py hands it over."""
    log = PredictionLog(root / LOG_DIR, 1 << 20, 0, 100, pii=PiiMask(contract.pii, b"k"))
    log.start()
    model = {"run_id": "run-1", "git_commit": commit, "data_hash": data_hash}
    log.append(
        {
            "request_id": "req-1",
            "model_name": "{{ cookiecutter.project_slug }}",
            "model_version": "3",
            "lineage": lineage(model),
            "role": "stable",
            "latency_ms": 0.5,
            "rows": 1,
            "inputs": {"age": [40], "email": [EMAIL]},
            "outputs": {"predictions": [1], "classes": [0, 1], "probabilities": [[0.2, 0.8]]},
            "shadow": None,
        }
    )
    log.close()


def test_a_request_back_to_its_data(make_project: Callable[..., Path], contract: Contract) -> None:
    root = make_project()
    commit, data_hash = _validated_project(root)
    _log_request(root, contract, commit, data_hash)
    assert EMAIL not in (root / LOG_DIR / LOG_FILE_NAME).read_text()

    request = find_request(root / LOG_DIR, contract, "req-1")
    assert request["email"].tolist() == [pii_hash(b"k", EMAIL)]
    links = {link.name: link for link in trace(request, root, RAW)}
    assert "prediction(s) 1, answered by the stable model" in links["request"].text
    assert links["model"].text == "{{ cookiecutter.project_slug }} v3"
    assert links["commit"].found
    assert f"git commit {commit}: " in links["commit"].text
    assert links["data"].text == f"{RAW} MD5 {data_hash} (dvc.lock in the working tree)"
    assert links["validation"].found
    assert "passed, 1 rows, 1 checks" in links["validation"].text
    # No tracking store and no DVC repository here: said, not guessed.
    assert not links["run"].found
    assert "no tracking store" in links["run"].text
    assert not links["storage"].found

    # The working tree moves on; the commit's dvc.lock still ties the data to its report.
    (root / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    old = root / LOG_DIR / segment_name(datetime.now(UTC) - timedelta(minutes=5), 1)
    (root / LOG_DIR / LOG_FILE_NAME).rename(old)
    assert compact(root / LOG_DIR, contract, retention_days=90).rows == 1
    compacted = find_request(root / LOG_DIR, contract, "req-1")
    assert compacted["run_id"].tolist() == ["run-1"]
    again = {link.name: link for link in trace(compacted, root, RAW)}
    assert again["data"].text == f"{RAW} MD5 {data_hash} (dvc.lock in commit {commit})"
    assert again["validation"].found


def test_an_unknown_request(make_project: Callable[..., Path], contract: Contract) -> None:
    root = make_project()
    missing = CliRunner().invoke(app, ["trace", "nope"])
    assert missing.exit_code == 1
    assert "no such request: nope" in missing.stderr
    assert "holds no prediction log" in missing.stderr

    _log_request(root, contract, "0" * 40, "0" * 32)
    result = CliRunner().invoke(app, ["trace", "nope"])
    assert result.exit_code == 1
    assert "starts at" in result.stderr
    assert "it was never logged here" in result.stderr
    later = datetime.now(UTC) + timedelta(days=100)
    message = no_such_request("nope", root / LOG_DIR, contract, 90, later)
    assert "were deleted by the 90-day retention" in message


def test_a_broken_chain_exits_3(make_project: Callable[..., Path], contract: Contract) -> None:
    _log_request(make_project(), contract, "unknown", "0" * 32)
    started = time.monotonic()
    result = CliRunner().invoke(app, ["trace", "req-1"])
    assert result.exit_code == 3, result.output
    assert "BROKEN: git commit unknown: not a commit id" in result.output
    assert "BROKEN: MD5 " + "0" * 32 in result.output
    assert time.monotonic() - started < 2
