"""`retrain`: new labelled data through the pipeline's own contract and gate, then a hot swap.

    inbox/*.csv|*.parquet -> each file checked by the pipeline's suite (validation.py)
    -> appended to the raw table, one row per id -> the whole table checked -> `dvc add`
    -> `dvc repro` (its register stage is the gate) -> `dvc push` (when there is a remote)
    -> if promoted: export -> POST /admin/reload

A file that fails its check moves to `<inbox>/rejected/<stamp>/` beside a `.reason.txt`, and
the retrain stops before anything else changes: the raw table, its .dvc file, the registry,
the exported champion and the service stay as they were. Files whose rows reached the raw
table move to `<inbox>/done/<stamp>/`, so they are never appended twice.

Duplicate ids: the new row wins. A labelled row that arrives later for a known id is newer
knowledge of that case (an outcome seen later, a corrected label); the old row is not lost,
since DVC keeps the previous table under the previous .dvc hash, and the audit line counts
the rows replaced. A contract without an id column drops exact duplicate rows only.

The caller holds the lock (trigger.acquire_lock). Every retrain, whatever its outcome,
appends one `retrain` line to reports/audit.jsonl, after the register stage's own line.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import AnyHttpUrl, TypeAdapter, ValidationError

from ..config import Params, RetrainParams, ValidationParams
from ..data import DataError, read_table, write_table
from ..schema import Contract
from ..validation import failure_message, quiet_great_expectations, validate_table
from .trigger import Trigger

REPORTS = Path("reports")
TABLE_SUFFIXES = (".csv", ".parquet")
Say = Callable[[str], None]


class RetrainError(RuntimeError):
    """The retrain stopped; the message names the cause (a file, a column, a command)."""


class InvalidDataError(RetrainError):
    """New data failed the contract's checks; nothing was changed."""


def retrain(trigger: Trigger, params: Params, say: Say, reports: Path = REPORTS) -> dict[str, Any]:
    """One retrain, start to finish; returns the audit entry it appended."""
    entry: dict[str, Any] = {
        "event": "retrain",
        "started_at": _now(),
        "by": os.environ.get("GITHUB_ACTOR") or getpass.getuser(),
        "reason": trigger.reason.value,
    }
    try:
        entry |= trigger.describe()
        entry["inbox"] = absorb_inbox(params, say)
        entry |= run_pipeline(say, reports)
        entry["pushed"] = push(say)
        if entry["outcome"] == "promoted":
            entry["deployed"] = deploy(params, entry["model_version"], say)
    except Exception as exc:  # recorded whatever it was, then raised as it was
        # A promotion stays the outcome if the export or the swap fails after it.
        entry.setdefault(
            "outcome", "invalid_data" if isinstance(exc, InvalidDataError) else "failed"
        )
        entry["error"] = str(exc)
        raise
    finally:
        entry["finished_at"] = _now()
        reports.mkdir(parents=True, exist_ok=True)
        with (reports / "audit.jsonl").open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def absorb_inbox(params: Params, say: Say) -> dict[str, Any]:
    """Move the inbox's valid rows into the raw table and re-track it with DVC."""
    inbox = params.monitoring.retrain.inbox
    files = inbox_files(inbox)
    if not files:
        say(f"{inbox}: no new files")
        return {"files": [], "rows_added": 0, "rows_replaced": 0}
    contract = Contract.load(params.data.contract)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    quiet_great_expectations()
    new = _checked_rows(files, contract, params.validation, inbox / "rejected" / stamp)
    raw = params.data.raw
    try:
        old = read_table(raw)
    except DataError as exc:
        raise RetrainError(f"{exc} (run `make data` first)") from None
    table, added, replaced = merge_rows(old, new, contract)
    say(f"{len(files)} file(s): {added} new rows, {replaced} replaced (same id)")
    _replace_tracked(table, raw, contract, params.validation, say)
    _move(files, inbox / "done" / stamp)
    return {
        "files": [path.name for path in files],
        "rows_added": added,
        "rows_replaced": replaced,
        "raw_rows": len(table),
    }


def inbox_files(inbox: Path) -> list[Path]:
    """The tables waiting in the inbox, oldest first (a later file wins a duplicate id).
    Hidden files are skipped, so a writer can write `.name.csv` and rename it when done."""
    if not inbox.is_dir():
        return []
    files = [
        path
        for path in inbox.iterdir()
        if path.is_file() and path.suffix in TABLE_SUFFIXES and not path.name.startswith(".")
    ]
    return sorted(files, key=lambda path: (path.stat().st_mtime, path.name))


def _checked_rows(
    files: list[Path], contract: Contract, rules: ValidationParams, rejected: Path
) -> pd.DataFrame:
    """Every file's rows, each file checked by the contract's row rules. The table-wide rules
    (row count, null share, means) say nothing about a small batch: the merged table meets
    them in _replace_tracked."""
    row_rules = rules.model_copy(
        update={"min_rows": 1, "max_null_fraction": 1.0, "mean_bounds": {}}
    )
    frames: list[pd.DataFrame] = []
    failures: list[tuple[Path, str]] = []
    for path in files:
        try:
            table = read_table(path)
            report = validate_table(table, contract, row_rules, str(path))
        except DataError as exc:
            failures.append((path, str(exc)))
            continue
        except (ValueError, OSError) as exc:  # a broken Parquet file, a CSV in another encoding
            failures.append((path, f"{path}: unreadable: {exc}"))
            continue
        if report.success:
            frames.append(table[contract.columns])
        else:
            failures.append((path, failure_message(report)))
    if failures:
        for path, reason in failures:
            _move([path], rejected)
            (rejected / f"{path.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
        reasons = "\n".join(reason for _, reason in failures)
        raise InvalidDataError(
            f"{reasons}\nmoved to {rejected} with the reason; nothing else changed "
            "(raw table, .dvc file, champion, service)"
        )
    return pd.concat(frames, ignore_index=True)


def merge_rows(
    old: pd.DataFrame, new: pd.DataFrame, contract: Contract
) -> tuple[pd.DataFrame, int, int]:
    """The raw table with the new rows appended, one row per id, the newest kept;
    returns (table, rows added, rows replaced)."""
    key = [contract.id] if contract.id is not None else contract.columns
    new = new.drop_duplicates(subset=key, keep="last")
    table = pd.concat([old, new], ignore_index=True).drop_duplicates(subset=key, keep="last")
    added = len(table) - len(old)
    return table.reset_index(drop=True), added, len(new) - added


def _replace_tracked(
    table: pd.DataFrame, raw: Path, contract: Contract, rules: ValidationParams, say: Say
) -> None:
    """Write the table as the pipeline will read it, check it with every rule, then swap it
    in and `dvc add` it; the old table comes back if DVC fails."""
    staged = raw.with_name(f".{raw.stem}.retrain{raw.suffix}")
    previous = raw.with_name(f".{raw.stem}.before-retrain{raw.suffix}")
    try:
        write_table(table, staged)
        report = validate_table(read_table(staged), contract, rules, str(raw))
        if not report.success:
            raise InvalidDataError(
                f"the raw table with the inbox's rows would fail validation:\n"
                f"{failure_message(report)}\nthe files stay in the inbox; nothing changed"
            )
        raw.replace(previous)
        try:
            staged.replace(raw)
            dvc("add", str(raw))
        except BaseException:
            previous.replace(raw)
            raise
        previous.unlink()
        say(f"{raw}: {len(table)} rows, tracked with DVC")
    finally:
        staged.unlink(missing_ok=True)


def _move(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        path.replace(folder / path.name)


def dvc(*args: str, capture: bool = False) -> str:
    """DVC's command line, its stable interface; its output when `capture`, else shown. This
    environment's `bin` goes first on PATH so the stages' commands resolve even when the
    virtualenv is not activated."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [sys.executable, "-m", "dvc", *args]
    env = {**os.environ, "PATH": path}
    done = subprocess.run(command, env=env, capture_output=capture, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RetrainError(f"`dvc {' '.join(args)}` failed with exit {done.returncode} (above)")
    return done.stdout if capture else ""


def push(say: Say) -> bool:
    """`dvc push` to the project's default remote, if it has one: a clone, a pull request or a
    colleague must find the new table and the new pipeline outputs there."""
    if not dvc("config", "core.remote", capture=True).strip():
        say("no default DVC remote: the new data stays in this project's cache")
        return False
    dvc("push")
    return True


def run_pipeline(say: Say, reports: Path) -> dict[str, Any]:
    """`dvc repro`, then the gate's decision if the register stage made a new one."""
    decision_file = reports / "decision.json"
    before = decision_file.read_text(encoding="utf-8") if decision_file.is_file() else None
    say("dvc repro: validate -> split -> train -> evaluate -> register (the gate)")
    dvc("repro")
    after = decision_file.read_text(encoding="utf-8") if decision_file.is_file() else None
    if after is None or after == before:
        say("the pipeline was up to date: no new model")
        return {"outcome": "unchanged"}
    decision = json.loads(after)
    say(f"v{decision['version']} {decision['outcome']}: " + "; ".join(decision["reasons"]))
    return {
        "outcome": decision["outcome"],
        "model_version": str(decision["version"]),
        "decision_reasons": decision["reasons"],
    }


def deploy(params: Params, version: str, say: Say) -> dict[str, Any]:
    """Export the new champion, then ask the running service, if any, to swap it in."""
    from ..export import ExportError, export_champion
    from ..features import TEST_FILE

    settings = params.monitoring.retrain
    try:
        export_champion(
            params.registry.model_name, settings.model_dir, params.data.processed_dir / TEST_FILE
        )
    except ExportError as exc:
        raise RetrainError(str(exc)) from None
    say(f"exported v{version} to {settings.model_dir}")
    url = service_url(settings)
    deployed: dict[str, Any] = {"model_dir": str(settings.model_dir), "service_url": url}
    if url is None:
        return deployed
    try:
        answer = reload_service(url, os.environ.get("ADMIN_TOKEN"), settings.reload_timeout)
    except RetrainError as exc:
        raise RetrainError(f"exported v{version} to {settings.model_dir}, but {exc}") from None
    if answer is None:
        say(f"no service answered at {url}: it serves v{version} from its next start")
        deployed["swap"] = "no service"
        return deployed
    if answer["model_version"] != version:
        raise RetrainError(
            f"{url} reloaded v{answer['model_version']}, not v{version}: "
            f"is its MODEL_DIR {settings.model_dir}?"
        )
    say(f"{url} swapped v{answer['previous_version']} -> v{version}")
    deployed["swap"] = answer
    return deployed


def service_url(settings: RetrainParams) -> str | None:
    """SERVICE_URL from the environment, else `service_url` in params.yaml; empty: none."""
    value = os.environ.get("SERVICE_URL")
    if value is None:
        return None if settings.service_url is None else str(settings.service_url).rstrip("/")
    if not value:
        return None
    try:
        return str(TypeAdapter(AnyHttpUrl).validate_python(value)).rstrip("/")
    except ValidationError:
        raise RetrainError(f"SERVICE_URL {value!r}: not an http(s) URL") from None


def reload_service(url: str, token: str | None, timeout: float) -> dict[str, str] | None:
    """POST {url}/admin/reload; the service's answer, or None when nothing listens there
    (then the token does not matter, so a missing one is only an error once a service answers)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(  # noqa: S310 - service_url is checked to be http(s)
        f"{url}/admin/reload", method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer: dict[str, str] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        hint = {
            401: "ADMIN_TOKEN differs from the service's" if token else "ADMIN_TOKEN is not set",
            404: "the service has no admin route: start it with ADMIN_TOKEN set",
            409: "the service kept the old model",
        }.get(exc.code, str(exc.reason))
        if exc.code == 409:  # its body says why the new model would not load
            hint = f"{hint}: {exc.read().decode(errors='replace')}"
        raise RetrainError(f"{url}/admin/reload answered {exc.code}: {hint}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return None
        raise RetrainError(f"{url}/admin/reload: {exc.reason}") from None
    except TimeoutError:
        raise RetrainError(f"{url}/admin/reload: no answer within {timeout} s") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
