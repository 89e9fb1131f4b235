"""The prediction API: `uvicorn --factory {{ cookiecutter.package_name }}.serving.app:create_app`.

Validation is one pydantic-core pass over the raw body (request models come from the data
contract), the model is the compiled scorer (numpy only) when the export has one, and
responses are orjson bytes: no pandas, no per-request DataFrame. POST /predict is answered by
the middleware's fast path (see predict.py); its route here documents it and runs the same code.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from .contract_models import PredictionResponse, RequestTypes, build_request_types
from .logs import configure_logging
from .metrics import ServingMetrics
from .middleware import BodyTooLargeError, ServingMiddleware
from .model_store import LoadedModel, ModelLoadError, load_model_dir
from .predict import PredictService
from .prediction_log import PredictionLog
from .runtime import ModelSlot, ShadowScorer, load_primary
from .settings import ServingSettings, load_settings

logger = logging.getLogger(__name__)

_JSON = "application/json"


# Module level: FastAPI resolves the (string) annotations that name them in module globals.
_API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="API_KEY")
_ADMIN_BEARER = HTTPBearer(auto_error=False, description="ADMIN_TOKEN")


class FieldError(BaseModel):
    loc: list[int | str]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    detail: list[FieldError]


class MessageResponse(BaseModel):
    detail: str


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status_code,
        media_type=_JSON,
    )


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the app for one model. Loads the model now, so the OpenAPI schema is its contract."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    model = load_primary(settings)
    metrics = ServingMetrics(regression=not model.contract.target.is_classification)
    slot = ModelSlot(model, loader=lambda: load_primary(settings))
    types = build_request_types(
        model.contract,
        settings.unknown_categories,
        settings.max_batch_rows,
        model.metadata.get("example"),
    )
    prediction_log = _prediction_log(settings, metrics)
    shadow = _shadow(settings, model, prediction_log, metrics)
    draining = False
    _set_model_info(metrics, None, model)
    service = PredictService(slot, types, metrics, prediction_log, shadow, settings.api_key)
    # One prediction of each kind now so the first client does not pay for lazy initialisation.
    warm_up, _ = types.to_columns(types.adapter.validate_python(types.example_record))
    model.predict(model.contract.encode(warm_up))
    model.predict_row(service.row(types.adapter.validate_python(types.example_record)))

    async def swap_model() -> tuple[LoadedModel, LoadedModel]:
        """Load the configured model in a thread (requests keep flowing), then swap it in."""
        try:
            previous, new = await run_in_threadpool(slot.reload)
        except ModelLoadError as exc:
            metrics.model_reloads.labels("failed").inc()
            logger.error("model reload refused", extra={"reason": str(exc)})
            raise
        metrics.model_reloads.labels("swapped").inc()
        _set_model_info(metrics, previous, new)
        logger.info(
            "model swapped",
            extra={"previous_version": previous.version, "model_version": new.version},
        )
        return previous, new

    reloads: set[asyncio.Task[Any]] = set()  # strong references until each reload finishes

    def reload_on_sighup() -> None:
        task = asyncio.ensure_future(swap_model())
        reloads.add(task)
        task.add_done_callback(_forget_reload(reloads))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal draining
        if prediction_log is not None:
            prediction_log.start()
        if shadow is not None:
            shadow.start()
        # `kill -HUP <pid>` reloads like POST /admin/reload (single-process mode; with
        # --workers, uvicorn's supervisor owns SIGHUP and restarts the workers instead).
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_on_sighup)
        logger.info(
            "model loaded",
            extra={"model_name": model.name, "model_version": model.version},
        )
        yield
        # uvicorn has stopped accepting connections and finished in-flight requests here.
        draining = True
        if shadow is not None:
            shadow.close()
        if prediction_log is not None:
            prediction_log.close()

    app = FastAPI(
        title=f"{model.name} prediction API",
        version=model.version,
        description="Predictions from the champion model. Request fields come from the "
        "data contract (schema.yaml).",
        default_response_class=Response,
        lifespan=lifespan,
    )
    app.add_middleware(
        ServingMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        predict=service,
        on_error=_internal_error,
    )
    _add_error_handlers(app)
    protected = [Depends(_api_key_check(settings.api_key))] if settings.api_key else []

    @app.get("/health", tags=["ops"], responses={200: {"content": {_JSON: {}}}})
    async def health() -> Response:
        """Liveness: the process answers."""
        return _json({"status": "ok"})

    @app.get("/ready", tags=["ops"], responses={503: {"model": MessageResponse}})
    async def ready() -> Response:
        """Readiness: a model is loaded and the service is not shutting down."""
        if draining or (prediction_log is not None and not prediction_log.alive):
            return _json({"detail": "not ready"}, 503)
        return _json({"status": "ready", "model_version": slot.current.version})

    @app.get("/metrics", tags=["ops"], responses={200: {"content": {"text/plain": {}}}})
    async def prometheus_metrics() -> Response:
        """Prometheus metrics (per worker process)."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/model", tags=["model"], dependencies=protected, responses=_AUTH_RESPONSES)
    async def model_card() -> Response:
        """Name, version, alias, lineage and metrics of the model being served."""
        current = slot.current
        return _json({"name": current.name, "version": current.version, **current.metadata})

    @app.post(
        "/predict",
        tags=["model"],
        dependencies=protected,
        response_model=PredictionResponse,
        responses={
            **_AUTH_RESPONSES,
            413: {"model": MessageResponse, "description": "Body over MAX_BODY_BYTES"},
            422: {"model": ValidationErrorResponse, "description": "Field-level errors"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    _JSON: {
                        "schema": {"$ref": "#/components/schemas/PredictRequest"},
                        "examples": types.examples(),
                    }
                },
            }
        },
    )
    async def predict(request: Request) -> Response:
        """Score one record, a list of records, or a columnar batch `{"columns": {...}}`."""
        # Normally answered by ServingMiddleware's fast path before routing; same code.
        started = time.perf_counter()
        body = await request.body()
        status, content = service.handle(body, request.state.request_id, started)
        return Response(content, status_code=status, media_type=_JSON)

    @app.post(
        "/admin/reload",
        tags=["admin"],
        responses={
            401: {"model": MessageResponse},
            403: {"model": MessageResponse},
            409: {"model": MessageResponse},
        },
    )
    async def reload_model(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_ADMIN_BEARER)],
    ) -> Response:
        """Load the configured model again (new champion) and swap it in without downtime."""
        if not settings.admin_token:
            raise HTTPException(403, "admin routes are disabled: set ADMIN_TOKEN to enable them")
        if credentials is None or not secrets.compare_digest(
            credentials.credentials.encode(), settings.admin_token.encode()
        ):
            raise HTTPException(401, "missing or wrong admin bearer token")
        try:
            previous, new = await swap_model()
        except ModelLoadError as exc:
            raise HTTPException(
                409, f"reload refused, still serving the old model: {exc}"
            ) from None
        return _json({"previous_version": previous.version, "model_version": new.version})

    _publish_request_schema(app, types)
    return app


def _forget_reload(reloads: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def forget(task: asyncio.Task[Any]) -> None:
        reloads.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("SIGHUP reload failed", extra={"reason": str(task.exception())})

    return forget


_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": MessageResponse, "description": "Missing or wrong X-API-Key (if API_KEY set)"}
}


def _api_key_check(expected: str) -> Callable[[str | None], None]:
    def check(key: Annotated[str | None, Security(_API_KEY_HEADER)]) -> None:
        if key is None or not secrets.compare_digest(key.encode(), expected.encode()):
            raise HTTPException(401, "missing or wrong X-API-Key header")

    return check


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
        # No `input` echo: it may hold NaN (not JSON) or data the caller should not see again.
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return _json({"detail": errors}, 422)

    @app.exception_handler(BodyTooLargeError)
    async def too_large(_: Request, exc: BodyTooLargeError) -> Response:
        return _json({"detail": str(exc)}, 413)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        content = _internal_error(exc, request.state.request_id, request.url.path)
        return Response(content, status_code=500, media_type=_JSON)


def _internal_error(exc: Exception, request_id: str, path: str) -> bytes:
    """Log an unexpected error; the 500 body. The traceback goes to the log with the request
    id, never to the client."""
    logger.error("unhandled error", exc_info=exc, extra={"request_id": request_id, "path": path})
    return orjson.dumps({"detail": "internal error", "request_id": request_id})


def _publish_request_schema(app: FastAPI, types: RequestTypes) -> None:
    """Add the contract-generated request models to the OpenAPI components."""
    schema = types.adapter.json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    definitions["PredictRequest"] = schema
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        document = build_openapi()
        document.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _set_model_info(
    metrics: ServingMetrics, previous: LoadedModel | None, new: LoadedModel
) -> None:
    if previous is not None:
        alias = str(previous.metadata.get("alias", ""))
        metrics.model_info.remove(previous.name, previous.version, alias)
    metrics.model_info.labels(new.name, new.version, str(new.metadata.get("alias", ""))).set(1)


def _prediction_log(settings: ServingSettings, metrics: ServingMetrics) -> PredictionLog | None:
    if settings.prediction_log_dir is None:
        return None
    return PredictionLog(
        settings.prediction_log_dir,
        max_bytes=settings.prediction_log_max_bytes,
        backups=settings.prediction_log_backups,
        queue_size=settings.prediction_log_queue_size,
        on_drop=metrics.prediction_log_dropped.inc,
    )


def _shadow(
    settings: ServingSettings,
    model: LoadedModel,
    prediction_log: PredictionLog | None,
    metrics: ServingMetrics,
) -> ShadowScorer | None:
    if settings.shadow_model_dir is None:
        return None
    challenger = load_model_dir(settings.shadow_model_dir, settings.trusted_types)
    if challenger.contract.features != model.contract.features:
        raise ModelLoadError(
            f"SHADOW_MODEL_DIR={settings.shadow_model_dir}: the shadow model uses different "
            "features from the served model"
        )
    return ShadowScorer(
        challenger,
        prediction_log,
        queue_size=settings.prediction_log_queue_size,
        on_drop=metrics.shadow_dropped.inc,
    )
