"""`{{ cookiecutter.project_slug }} trace REQUEST_ID`: one prediction back to the data its model learnt from.

request (the prediction log, JSONL or compacted Parquet) -> model version -> MLflow run -> git
commit -> the DVC-tracked data file and its MD5, and whether the DVC cache and remote still
hold those bytes -> the validation report of that data.

Each link is found by what the previous one recorded and checked against it: a data file is
named only where DVC recorded the MD5 the run was trained on, and a validation report only
where DVC recorded it as the output of validating that MD5. The records (the raw table's
.dvc file, dvc.lock) are searched in the working tree first, then in their history: a run's
own commit precedes the commit of its results.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import yaml

from ..schema import Contract
from ..tracking import tracking_uri
from .log_store import oldest_entry, segments

LOCK_FILE = "dvc.lock"
VALIDATION_STAGE = "validate"
VALIDATION_REPORT = "reports/validation.json"
# How far back the history of a .dvc file or dvc.lock is searched for a data hash.
HISTORY = 200
# Predictions of a batch request printed; the rest are in the log.
SHOWN = 10


@dataclass(frozen=True)
class Link:
    name: str
    found: bool
    text: str


def no_such_request(
    request_id: str, directory: Path, contract: Contract, retention_days: int, now: datetime
) -> str:
    """Why a request id is not in the log: never logged here, or deleted by the retention.

    Rotation and compaction lose nothing (find_request reads JSONL and Parquet segments);
    only the retention deletes, and only segments older than `retention_days`.
    """
    oldest = oldest_entry(directory, contract)
    head = f"no such request: {request_id}"
    if oldest is None:
        return f"{head}; {directory} holds no prediction log"
    held = f"{directory} ({len(segments(directory))} segment(s)) starts at {oldest.isoformat()}"
    if oldest > now - timedelta(days=retention_days):
        return (
            f"{head}; {held}, and nothing has reached the {retention_days}-day retention yet: "
            "it was never logged here (refused requests are not logged)"
        )
    return (
        f"{head}; {held}: requests older than that were deleted by the {retention_days}-day "
        "retention (monitoring.log.retention_days)"
    )


def trace(request: pd.DataFrame, project: Path, raw: Path) -> list[Link]:
    """The chain from a request's rows (`log_store.find_request`) to its data's validation
    report; a link that cannot be followed or does not check out is not `found`. `raw` is the
    raw table params.yaml names (its .dvc file is searched first)."""
    first = request.iloc[0]
    run_id, commit, data_hash = (str(first[key]) for key in ("run_id", "git_commit", "data_hash"))
    model_name, version = str(first["model_name"]), str(first["model_version"])
    predictions = request["prediction"].tolist()
    shown = ", ".join(str(p) for p in predictions[:SHOWN]) + (", ..." * (len(predictions) > SHOWN))
    links = [
        Link(
            "request",
            True,
            f"{first['request_id']} at {first['timestamp'].isoformat()}: {len(request)} row(s), "
            f"prediction(s) {shown}, answered by the {first['role']} model",
        ),
        Link("model", version != "unknown", f"{model_name} v{version}"),
        _run_link(run_id, commit, data_hash, model_name, version, project),
        _commit_link(commit, project),
    ]
    data = _data_link(data_hash, project, raw)
    links.append(data)
    if data.found:
        links.append(_storage_link(data_hash, project))
    links.append(_report_link(data_hash, project))
    return links


def _run_link(
    run_id: str, commit: str, data_hash: str, model_name: str, version: str, project: Path
) -> Link:
    """The MLflow run, read back: its lineage tags must be the ones the log line carries."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not (project / uri.removeprefix("sqlite:///")).is_file():
        return Link("run", False, f"MLflow run {run_id}: no tracking store at {uri}")
    # Here, not at the top: MLflow takes seconds to import, and the log search needs none of it.
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri, uri)
    try:
        run = client.get_run(run_id)
        registered = client.get_model_version(model_name, version).run_id
    except MlflowException as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Link("run", False, f"MLflow run {run_id}: not in {uri} ({first_line})")
    tags = run.data.tags
    differ = [
        f"{name} {tags.get(name)} in the run, {logged} in the log"
        for name, logged in (("git_commit", commit), ("data_hash", data_hash))
        if tags.get(name) != logged
    ]
    if registered != run_id:
        differ.append(f"the registry's v{version} is run {registered}")
    started = pd.Timestamp(run.info.start_time, unit="ms", tz="UTC").isoformat()
    text = f"MLflow run {run_id} ({run.info.status}, started {started})"
    return Link("run", not differ, text + (": " + "; ".join(differ) if differ else ""))


def _git(project: Path, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 - git from PATH, with arguments this module builds
        ["git", *arguments],  # noqa: S607
        cwd=project,
        capture_output=True,
        check=False,
    )


def _commit_link(commit: str, project: Path) -> Link:
    # Only a hex id reaches git: the log is a file, and a line could say anything.
    if re.fullmatch(r"[0-9a-f]{7,64}", commit) is None:
        return Link("commit", False, f"git commit {commit}: not a commit id")
    shown = _git(project, "show", "-s", "--format=%cI %s", commit + "^{commit}", "--")
    if shown.returncode != 0:
        return Link("commit", False, f"git commit {commit}: not in this repository")
    return Link("commit", True, f"git commit {commit}: {shown.stdout.decode().strip()}")


def _versions(project: Path, name: str) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """A YAML file as the working tree has it, then as each recent commit had it, newest
    first: (None or the commit, the document). git is asked only if the search goes on."""
    current = project / name
    if current.is_file():
        yield from _parsed(None, current.read_bytes())
    history = _git(project, "log", f"-n{HISTORY}", "--format=%H", "--", name)
    for commit in history.stdout.decode().split():
        shown = _git(project, "show", f"{commit}:{name}")
        if shown.returncode == 0:
            yield from _parsed(commit, shown.stdout)


def _parsed(commit: str | None, text: bytes) -> Iterator[tuple[str | None, dict[str, Any]]]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    if isinstance(document, dict):
        yield commit, document


def _where(name: str, commit: str | None) -> str:
    return f"{name} in " + ("the working tree" if commit is None else f"commit {commit}")


def _data_link(data_hash: str, project: Path, raw: Path) -> Link:
    """The file DVC tracks with that MD5: the raw table's .dvc file, else a dvc.lock stage."""
    tracker = f"{raw}.dvc"
    for commit, document in _versions(project, tracker):
        if any(out.get("md5") == data_hash for out in document.get("outs") or []):
            return Link("data", True, f"{raw} MD5 {data_hash} ({_where(tracker, commit)})")
    for commit, document in _versions(project, LOCK_FILE):
        for stage in (document.get("stages") or {}).values():
            for dep in stage.get("deps") or []:
                if dep.get("md5") == data_hash:
                    where = _where(LOCK_FILE, commit)
                    return Link("data", True, f"{dep['path']} MD5 {data_hash} ({where})")
    return Link(
        "data",
        False,
        f"MD5 {data_hash}: neither {tracker} nor {LOCK_FILE} records it (the working tree "
        f"and their last {HISTORY} commits)",
    )


def _storage_link(data_hash: str, project: Path) -> Link:
    """Whether DVC can still give those bytes back: its cache, its default remote."""
    if not (project / ".dvc").is_dir():
        return Link("storage", False, "not a DVC repository: no cache or remote to ask")
    # Here, not at the top: DVC takes a second or two to import.
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        cached = repo.cache.local.exists(data_hash)
        try:
            remote = repo.cloud.get_remote_odb()
            in_remote = remote.exists(data_hash)
            stored = f"remote {remote.path}: {'holds them' if in_remote else 'MISSING'}"
        except DvcException as exc:
            stored, in_remote = f"remote: {exc}", False
    cache = f"DVC cache: {'holds the bytes' if cached else 'MISSING'}"
    return Link("storage", cached or in_remote, f"{cache}; {stored}")


def _report_link(data_hash: str, project: Path) -> Link:
    """The validation report DVC recorded as the output of validating exactly that MD5."""
    for commit, document in _versions(project, LOCK_FILE):
        stage = (document.get("stages") or {}).get(VALIDATION_STAGE) or {}
        if any(dep.get("md5") == data_hash for dep in stage.get("deps") or []):
            outs = {out["path"]: out.get("md5") for out in stage.get("outs") or []}
            return _report(commit, outs.get(VALIDATION_REPORT), project)
    return Link(
        "validation",
        False,
        f"no {LOCK_FILE} records validating MD5 {data_hash} (the working tree and its last "
        f"{HISTORY} commits)",
    )


def _report(commit: str | None, md5: str | None, project: Path) -> Link:
    where = _where(VALIDATION_REPORT, commit)
    if commit is None:
        path = project / VALIDATION_REPORT
        content = path.read_bytes() if path.is_file() else None
    else:
        shown = _git(project, "show", f"{commit}:{VALIDATION_REPORT}")
        content = shown.stdout if shown.returncode == 0 else None
    # MD5 as DVC computes it: the report must be the one the stage wrote, not a later one.
    if content is None or md5 is None or hashlib.md5(content).hexdigest() != md5:  # noqa: S324
        return Link("validation", False, f"{where}: missing, or not the report DVC recorded")
    report: dict[str, Any] = orjson.loads(content)
    failed = sum(not check["success"] for check in report["checks"])
    verdict = "passed" if report["success"] else f"FAILED ({failed} checks)"
    text = f"{where}: {verdict}, {report['rows']} rows, {len(report['checks'])} checks"
    return Link("validation", True, text)
