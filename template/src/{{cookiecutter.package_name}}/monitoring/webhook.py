"""Alertmanager's webhook receiver: a firing alert labelled action="retrain" starts a retrain.

A small process of its own (`webhook`, `make webhook`), so the serving image carries no
training code. POST /alertmanager takes Alertmanager's webhook JSON with the header
`Authorization: Bearer $RETRAIN_TOKEN` and answers:

    202  a retrain started (reason `alert`; the alerts' labels go to the audit log)
    409  a retrain is already running: nothing started
    401  missing or wrong token: nothing started, the body is not read
    200  nothing to do: resolved alerts, or none labelled action="retrain"
    422  not Alertmanager's webhook JSON (the field is named)

The retrain runs in a thread of this process; the request that started it holds the lock
(trigger.acquire_lock) and hands it to the thread, so two alerts at once give one retrain.
The thread is not a daemon: a retrain under way finishes before the process exits.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from .trigger import LOCK_FILE, AlreadyRunningError, Reason, Trigger, acquire_lock

logger = logging.getLogger(__name__)

Job = Callable[[Trigger], object]


class Alert(BaseModel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]


class Notification(BaseModel):
    """The fields used of Alertmanager's webhook payload (version 4); the rest is ignored."""

    status: Literal["firing", "resolved"]
    alerts: list[Alert]


def create_app(token: str, job: Job, lock_file: Path = LOCK_FILE) -> FastAPI:
    """The receiver; `job` runs the retrain (retrain_job in production)."""
    if not token:
        raise ValueError("RETRAIN_TOKEN is empty: the webhook refuses to start without a token")
    app = FastAPI(title="retrain webhook", docs_url=None, redoc_url=None)
    app.state.token = token

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/alertmanager", dependencies=[Depends(authorised)])
    async def alertmanager(request: Request) -> JSONResponse:
        # Read only once the token passed: a caller without it cannot make us parse anything.
        try:
            notification = Notification.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        alerts = tuple(
            alert.labels
            for alert in notification.alerts
            if alert.status == "firing" and alert.labels.get("action") == "retrain"
        )
        if not alerts:
            detail = 'no firing alert labelled action="retrain"'
            return JSONResponse({"status": "ignored", "detail": detail})
        try:
            lock = acquire_lock(lock_file)
        except AlreadyRunningError as exc:
            return JSONResponse({"detail": str(exc)}, 409)
        trigger = Trigger(Reason.ALERT, alerts=alerts)
        threading.Thread(target=_run, args=(job, trigger, lock), name="retrain").start()
        names = sorted({labels.get("alertname", "?") for labels in alerts})
        logger.info("retrain started by %s", ", ".join(names))
        return JSONResponse({"status": "started", "alerts": names}, 202)

    return app


_BEARER = HTTPBearer(auto_error=False)


async def authorised(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
) -> None:
    given = credentials.credentials.encode() if credentials is not None else b""
    if not secrets.compare_digest(given, request.app.state.token.encode()):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


def _run(job: Job, trigger: Trigger, lock: IO[str]) -> None:
    try:
        job(trigger)
    except Exception:
        logger.exception("retrain failed (its audit line in reports/audit.jsonl says why)")
    finally:
        lock.close()


def retrain_job(params_file: Path) -> Job:
    """The production job: the same retrain as the `retrain` command."""

    def job(trigger: Trigger) -> object:
        from ..config import load_params
        from .retrain import retrain

        return retrain(trigger, load_params(params_file), logger.info)

    return job
