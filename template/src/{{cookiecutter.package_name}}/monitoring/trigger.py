"""What starts a retrain: the reason, the drift report or the alerts behind it, and the
single-flight lock. Light on purpose (no pandas, no MLflow): the webhook answers with it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ValidationError

from ..yaml_model import describe_errors

# Under logs/, which git ignores: a lock is state of this machine, not of the project.
LOCK_FILE = Path("logs/retrain.lock")


class Reason(StrEnum):
    DRIFT = "drift"  # a drift report (`monitor`) found drift
    ALERT = "alert"  # Alertmanager called the webhook
    SCHEDULE = "schedule"  # a timer (the retrain workflow's cron)
    MANUAL = "manual"  # a person


class AlreadyRunningError(RuntimeError):
    """Another retrain holds the lock; this one did nothing."""


class ReportError(ValueError):
    """The drift report named as the cause cannot be read."""


class DriftReport(BaseModel):
    """What the audit log keeps of the drift report behind a retrain (`monitor` writes it)."""

    verdict: Literal["drift", "no_drift", "no_traffic"]
    model_version: str | None = None
    drifted_features: list[str] = []
    window: dict[str, Any] = {}


@dataclass(frozen=True)
class Trigger:
    reason: Reason
    report: Path | None = None
    # The labels of the firing alerts that called the webhook.
    alerts: tuple[dict[str, str], ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        """The trigger as the audit log records it; reads the report (ReportError if it can't)."""
        report = None
        if self.report is not None:
            report = {"path": str(self.report), **read_report(self.report).model_dump()}
        return {"reason": self.reason.value, "report": report, "alerts": list(self.alerts)}


def read_report(path: Path) -> DriftReport:
    try:
        return DriftReport.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ReportError(f"{path}: drift report not found (run `monitor` first)") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not a JSON drift report: {exc}") from None
    except ValidationError as exc:
        raise ReportError(f"{path}: not a drift report: {describe_errors(exc)}") from None


def acquire_lock(path: Path = LOCK_FILE) -> IO[str]:
    """Take the one retrain slot, or raise AlreadyRunningError. Closing the returned file frees
    it; so does the process dying (flock), so a crash leaves no stale lock behind."""
    import fcntl  # POSIX only: imported here so the CLI still loads where it is missing

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise AlreadyRunningError(f"already running ({holder or 'another retrain'})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}")
    handle.flush()
    return handle
