"""The routes, in four routers (ops, scrape, model, admin); auth.py guards them.

Everything a route needs is one `Serving` object on `app.state`. The body of POST /predict
is read by `limited_body`, the one place that refuses a body over MAX_BODY_BYTES (413).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from .canary import CanarySplit, Served
from .contract_models import PredictionResponse
from .explain import ExplanationResponse, explain
from .metrics import CONTENT_TYPE_LATEST, ServingMetrics
from .middleware import header_value
from .model_store import LoadedModel, ModelLoadError
from .predict import PredictService
from .runtime import ModelSlot
from .settings import ServingSettings

logger = logging.getLogger(__name__)


class JSONBytes(JSONResponse):
    """Already-serialised JSON: the routes write orjson bytes, so nothing re-encodes them.
    (A JSONResponse, so the OpenAPI document shows each route's response model.)"""

    def render(self, content: Any) -> bytes:
        return cast(bytes, content)


class Message(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[int | str]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    detail: list[FieldError]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model_version: str


class CanaryInfo(BaseModel):
    name: str
    version: str
    percent: float


class ModelInfo(BaseModel):
    """The served model's name and version, and its metadata.json (alias, lineage, metrics);
    the process's role, and the canary beside it with its share of the traffic (or null)."""

    model_config = ConfigDict(extra="allow")
    name: str
    version: str
    role: str
    canary: CanaryInfo | None


class Reloaded(BaseModel):
    previous_version: str
    model_version: str
    canary_version: str | None


class CanaryShare(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # `true` is not 1%
    percent: float = Field(ge=0, le=100, description="Share of /predict requests, 0 stops it")


class CanaryChanged(BaseModel):
    previous_percent: float
    percent: float
    canary_version: str | None


@dataclass
class Serving:
    """The state of one app: settings, the served model and what records its predictions."""

    settings: ServingSettings
    slot: ModelSlot
    metrics: ServingMetrics
    predictor: PredictService
    draining: bool = False
    _reloads: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def split(self) -> CanarySplit:
        return self.predictor.split

    async def swap_model(self) -> tuple[LoadedModel, LoadedModel]:
        """Load the configured model in a thread (requests keep flowing), then swap it in;
        the canary too, when there is one (a new version exported to CANARY_MODEL_DIR)."""
        try:
            previous, new = await run_in_threadpool(self.slot.reload)
        except ModelLoadError as exc:
            self.metrics.model_reloads.labels("failed").inc()
            logger.error("model reload refused", extra={"reason": str(exc)})
            raise
        self.metrics.model_reloads.labels("swapped").inc()
        self.metrics.model_info.labels(*_info_labels(previous)).set(0)
        self.metrics.model_info.labels(*_info_labels(new)).set(1)
        logger.info(
            "model swapped",
            extra={"previous_version": previous.version, "model_version": new.version},
        )
        if self.split.canary is not None:
            await self._swap_canary(self.split.canary)
        return previous, new

    async def _swap_canary(self, canary: ModelSlot) -> None:
        try:
            previous, new = await run_in_threadpool(canary.reload)
        except ModelLoadError as exc:
            # The stable model is swapped already; the canary keeps its old version.
            self.metrics.model_reloads.labels("failed").inc()
            logger.error(
                "canary reload refused",
                extra={"reason": str(exc), "canary_version": canary.current.version},
            )
            return
        logger.info(
            "canary swapped",
            extra={"previous_version": previous.version, "canary_version": new.version},
        )

    def reload_in_background(self) -> None:
        """SIGHUP: reload like POST /admin/reload; a failure is logged (by swap_model)."""
        task = asyncio.ensure_future(self.swap_model())
        self._reloads.add(task)  # a strong reference until it finishes
        task.add_done_callback(self._reloads.discard)
        # Fetch the outcome so asyncio does not report a failure swap_model already logged.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())


def _info_labels(model: LoadedModel) -> tuple[str, str, str]:
    return model.name, model.version, str(model.metadata.get("alias", ""))


def _state(request: Request) -> Serving:
    state: Serving = request.app.state.serving
    return state


# async, like every dependency here: FastAPI runs a plain `def` one in a worker thread.
async def serving(request: Request) -> Serving:
    return _state(request)


async def limited_body(request: Request) -> bytes:
    """The request body, or a 413 as soon as it passes MAX_BODY_BYTES (declared or streamed)."""
    limit = _state(request).settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    # ASGI's messages as they come: `request.stream()` is an async generator, which costs a
    # single-record request microseconds.
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# The body of /predict and /explain is validated in one pass over the raw bytes (predict.py);
# app.py publishes its schema and examples (generated from the contract) here.
PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
        },
    }
}

# app.py puts each router's key check on it (auth.py): none on the probes, the `metrics`
# role on scrapes, `predict` on the model routes, `admin` on the admin routes.
ops = APIRouter(tags=["ops"], default_response_class=JSONBytes)
scrape = APIRouter(tags=["ops"], default_response_class=JSONBytes)
model = APIRouter(tags=["model"], default_response_class=JSONBytes)
admin = APIRouter(tags=["admin"], default_response_class=JSONBytes)


@ops.get("/health", responses={200: {"model": Health}})
async def health() -> Response:
    """Liveness: the process answers."""
    return JSONBytes(b'{"status":"ok"}')


@ops.get("/ready", responses={200: {"model": Readiness}, 503: {"model": Message}})
async def ready(state: Annotated[Serving, Depends(serving)]) -> Response:
    """Readiness: a model is loaded and the service is not shutting down; with
    `prediction_log_on_failure: refuse`, its prediction log can be written too."""
    if state.draining:
        return JSONBytes(b'{"detail":"not ready"}', 503)
    log = state.predictor.prediction_log
    if log is not None and not log.ready():
        detail = f"not ready: the prediction log cannot be written ({log.failure})"
        return JSONBytes(orjson.dumps({"detail": detail}), 503)
    return JSONBytes(orjson.dumps({"status": "ready", "model_version": state.slot.current.version}))


@scrape.get(
    "/metrics", responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}
)
async def metrics(state: Annotated[Serving, Depends(serving)]) -> Response:
    """Prometheus metrics (of every worker when PROMETHEUS_MULTIPROC_DIR is set)."""
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@model.get("/model", responses={200: {"model": ModelInfo}})
async def model_card(state: Annotated[Serving, Depends(serving)]) -> Response:
    """Name, version, alias, lineage and metrics of the model being served, its role, and
    the canary's name, version and share of the traffic."""
    current, split = state.slot.current, state.split
    canary = None
    if split.canary is not None:
        model = split.canary.current
        canary = {"name": model.name, "version": model.version, "percent": split.percent}
    return JSONBytes(
        orjson.dumps(
            {
                **current.metadata,
                "name": current.name,
                "version": current.version,
                "role": split.role.value,
                "canary": canary,
            }
        )
    )


# What /predict and /explain answer to a body they refuse: they read the same body.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": Message, "description": "Body over MAX_BODY_BYTES"},
    422: {"model": ValidationErrors, "description": "Field-level errors"},
}


@model.post(
    "/predict",
    responses={
        200: {"model": PredictionResponse},
        **BODY_ERRORS,
        503: {"model": Message, "description": "Its log line cannot be written (refuse mode)"},
    },
    openapi_extra=PREDICT_BODY,
)
async def predict(request: Request) -> Response:
    """Score one record, a list of records, or a columnar batch `{"columns": {...}}`."""
    # No dependencies on the hot path: solving each costs more than validating the record.
    body = await limited_body(request)
    predictor = _state(request).predictor
    request_id = request.scope["state"]["request_id"]  # set by the middleware
    status, content = await predictor.score(body, request_id, _served(request))
    return JSONBytes(content, status)


@model.post(
    "/explain",
    responses={
        200: {"model": ExplanationResponse},
        409: {"model": Message, "description": "Neither trees nor a linear model to explain"},
        **BODY_ERRORS,
    },
    openapi_extra=PREDICT_BODY,
)
async def explain_route(request: Request) -> Response:
    """Each feature's contribution to each record's raw output (log-odds, class margins or
    the value), with the base value they add up from: the body /predict takes."""
    body = await limited_body(request)
    types = _state(request).predictor.types
    model = _served(request).model
    # In a thread: the first call tables the model's trees (tens of milliseconds).
    status, content = await run_in_threadpool(explain, types, model, body, request.state.request_id)
    return JSONBytes(content, status)


def _served(request: Request) -> Served:
    """The model that answers this caller, left in the request's state for the metrics."""
    split = _state(request).predictor.split
    # Starlette's `request.headers.get` of an absent header costs microseconds (a KeyError):
    # the header is read only while a canary takes traffic.
    caller_id = header_value(request.scope, b"x-caller-id") if split.active else None
    # Chosen here, so the middleware labels the request with it even if scoring fails.
    served: Served = split.choose(caller_id)
    request.scope["state"]["served"] = served
    return served


@admin.post("/admin/reload", responses={200: {"model": Reloaded}, 409: {"model": Message}})
async def reload_model(state: Annotated[Serving, Depends(serving)]) -> Response:
    """Load the configured model again (new champion) and swap it in without downtime."""
    try:
        previous, new = await state.swap_model()
    except ModelLoadError as exc:
        raise HTTPException(409, f"reload refused, still serving the old model: {exc}") from None
    canary = state.split.canary
    return JSONBytes(
        orjson.dumps(
            {
                "previous_version": previous.version,
                "model_version": new.version,
                "canary_version": canary.current.version if canary is not None else None,
            }
        )
    )


@admin.put(
    "/admin/canary",
    responses={
        200: {"model": CanaryChanged},
        400: {"model": Message, "description": "The body is not JSON"},
        409: {"model": Message, "description": "No canary model to send traffic to"},
    },
)
async def set_canary(share: CanaryShare, state: Annotated[Serving, Depends(serving)]) -> Response:
    """Send `percent` of /predict requests to the canary from now on (0 stops it)."""
    split = state.split
    try:
        previous = split.set_percent(share.percent)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    canary = split.canary.current.version if split.canary is not None else None
    logger.info(
        "canary share changed",
        extra={"previous_percent": previous, "percent": share.percent, "canary_version": canary},
    )
    return JSONBytes(
        orjson.dumps(
            {"previous_percent": previous, "percent": share.percent, "canary_version": canary}
        )
    )
