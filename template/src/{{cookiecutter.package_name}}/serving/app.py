"""The prediction API, started by serving/server.py (`make serve`, the image): `create_app`.

`create_app` loads the model (so the OpenAPI document is its contract), builds one `Serving`
state and mounts the routers of routes.py. Every request goes through FastAPI's routing.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

# fastapi-offline: Swagger UI and ReDoc served from the package (~0.8 MB, maintained), so
# /docs works without a CDN; swagger-ui-bundle weighs 2.6 MB and was last released in 2023.
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from . import routes, v2_routes
from .auth import KeyRole, guard, load_key_ring
from .canary import CanarySplit
from .contract_models import RequestTypes, build_request_types
from .live_drift import LiveDrift
from .logs import configure_logging
from .metrics import ServingMetrics
from .middleware import ObservingMiddleware
from .model_store import LoadedModel, ModelLoadError, load_model_dir
from .pii import pii_mask
from .predict import PredictService
from .prediction_log import PredictionLog
from .runtime import ModelSlot, ShadowScorer, load_primary
from .settings import ServingSettings, load_settings
from .v2 import V2Protocol

logger = logging.getLogger(__name__)


def build_predict_service(settings: ServingSettings) -> PredictService:
    """The predict path without HTTP, as every entry point serves it: the model and its
    metrics, the request types, live drift, the prediction log, the shadow and the canary
    split. create_app puts the routes in front of it; the stream consumer
    (delivery/consumer.py) feeds it from a topic."""
    model = load_primary(settings)
    metrics = ServingMetrics(regression=not model.contract.target.is_classification)
    metrics.model_info.labels(model.name, model.version, str(model.metadata.get("alias", ""))).set(
        1
    )
    types = build_request_types(
        model.contract,
        settings.unknown_categories,
        settings.max_batch_rows,
        model.metadata.get("example"),
    )
    drift = LiveDrift(metrics)
    drift.use(model)
    log = _prediction_log(settings, metrics, model)
    shadow = _shadow(settings, model, log, metrics)
    slot = ModelSlot(model, loader=lambda: load_primary(settings))
    split = CanarySplit(
        slot, _canary(settings, model), settings.canary_percent, settings.serving_role
    )
    # One prediction now, so the first client does not pay for lazy initialisation.
    warm_up, _ = types.to_columns(types.adapter.validate_python(types.example_record))
    model.predict(model.contract.encode(warm_up))
    return PredictService(slot, types, metrics, log, shadow, drift, split)


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the app for the configured model."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    predictor = build_predict_service(settings)
    model, metrics, split = predictor.slot.current, predictor.metrics, predictor.split
    log, shadow, drift = predictor.prediction_log, predictor.shadow, predictor.drift
    state = routes.Serving(settings, predictor.slot, metrics, predictor)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for worker in (log, shadow, drift):
            if worker is not None:
                worker.start()
        # `kill -HUP <pid>` reloads like POST /admin/reload (single process; with --workers,
        # uvicorn's supervisor owns SIGHUP and restarts the workers instead).
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, state.reload_in_background)
        logger.info(
            "model loaded", extra={"model_name": model.name, "model_version": model.version}
        )
        yield
        # uvicorn has stopped accepting connections and finished in-flight requests here.
        state.draining = True
        for worker in (shadow, log, drift):
            if worker is not None:
                worker.close()
        metrics.close()

    app = FastAPIOffline(
        title=f"{model.name} prediction API",
        version=model.version,
        description="Predictions from the champion model. Request fields come from the "
        "data contract (schema.yaml).",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry asks the global providers whether to trace on every
        # request (3.5 us, measured); the service reports through /metrics and its JSON logs.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.serving = state
    app.state.v2 = V2Protocol(model.contract, predictor.types)
    app.add_middleware(ObservingMiddleware, metrics=metrics, default_labels=split.labels)
    keys = load_key_ring(settings)
    # /predict's router first: routes are matched in order, and each one tried before the
    # one that matches costs a request microseconds.
    mount(app, routes.model, **guard(KeyRole.PREDICT, keys))
    mount(app, routes.ops)
    mount(app, routes.scrape, **guard(KeyRole.METRICS, keys))
    mount(app, v2_routes.health)
    mount(app, v2_routes.models, **guard(KeyRole.PREDICT, keys))
    # Without an admin key the admin routes do not exist (404): nothing to guess a key for.
    if keys.guards(KeyRole.ADMIN):
        mount(app, routes.admin, **guard(KeyRole.ADMIN, keys))
    _add_error_handlers(app)
    _publish_request_schema(app, predictor.types)
    return app


# What `add_api_route` takes; an APIRoute keeps each under the same name.
_ROUTE_FIELDS = [
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name not in ("self", "route_class_override")
]


def mount(
    app: FastAPI,
    router: APIRouter,
    dependencies: Sequence[Any] = (),
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> None:
    """`app.include_router(router, dependencies=..., responses=...)`, with the routes added to
    the app's own list. Since FastAPI 0.137 an included router stays a node of the route
    tree, which a request matches twice (to choose the router, then its route): 11-14 us,
    2-3% of a single record's CPU in the server (measured side by side)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only path operations are mounted")
        fields = {name: getattr(route, name) for name in _ROUTE_FIELDS}
        fields["dependencies"] = [*dependencies, *route.dependencies]
        fields["responses"] = {**(responses or {}), **route.responses}
        app.router.add_api_route(**fields)


def api_document() -> dict[str, Any]:
    """Every route's OpenAPI entry without a model (the docs' reference page, reference.py):
    the routers create_app mounts, admin included; no contract-generated request models."""
    app = FastAPI(title="prediction API")
    mounted = (routes.ops, routes.scrape, routes.model, v2_routes.health, v2_routes.models)
    for router in (*mounted, routes.admin):
        mount(app, router)
    return app.openapi()


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
        # No `input` echo: it may hold NaN (not JSON) or data the caller should not see again.
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return routes.JSONBytes(orjson.dumps({"detail": errors}), 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        body = orjson.dumps({_error_key(request): exc.detail})
        return routes.JSONBytes(body, exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The traceback goes to the log with the request id, never to the client.
        request_id = request.state.request_id
        logger.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
        body = orjson.dumps({_error_key(request): "internal error", "request_id": request_id})
        return routes.JSONBytes(body, 500)


def _error_key(request: Request) -> str:
    """The Open Inference Protocol's routes answer its error object, `{"error": ...}`."""
    return "error" if request.url.path.startswith("/v2") else "detail"


def _publish_request_schema(app: FastAPI, types: RequestTypes) -> None:
    """Add the contract-generated request models and examples to the OpenAPI document."""
    schema = types.adapter.json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    definitions["PredictRequest"] = schema
    definitions["InferenceRequest"] = app.state.v2.request_schema()
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        document = build_openapi()
        document.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
        for path in ("/predict", "/explain"):
            body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            body["examples"] = types.examples()
        _served_names(document, app.state.serving.split)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _served_names(document: dict[str, Any], split: CanarySplit) -> None:
    """The V2 routes' {name} and {version}: the names and versions served now."""
    served = {"name": [split.stable.current.name], "version": split.versions()}
    for path, operations in document["paths"].items():
        if path.startswith("/v2/models/"):
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path":
                        parameter["schema"]["enum"] = served[parameter["name"]]


def _prediction_log(
    settings: ServingSettings, metrics: ServingMetrics, model: LoadedModel
) -> PredictionLog | None:
    if settings.prediction_log_dir is None:
        return None
    return PredictionLog(
        settings.prediction_log_dir,
        max_bytes=settings.prediction_log_max_bytes,
        backups=settings.prediction_log_backups,
        queue_size=settings.prediction_log_queue_size,
        durability=settings.prediction_log_durability,
        on_failure=settings.prediction_log_on_failure,
        on_drop=metrics.prediction_log_lost,
        pii=pii_mask(model.contract, settings),
    )


def _canary(settings: ServingSettings, model: LoadedModel) -> ModelSlot | None:
    """The canary beside the stable model: the same contract, or the service does not start
    (the request schema is the stable model's)."""
    folder = settings.canary_model_dir
    if folder is None:
        return None

    def load() -> LoadedModel:
        return load_model_dir(folder, settings.trusted_types)

    canary = load()
    if canary.contract != model.contract:
        raise ModelLoadError(
            f"CANARY_MODEL_DIR={folder}: the canary model was trained on a different data "
            "contract from the served model's"
        )
    return ModelSlot(canary, loader=load)


def _shadow(
    settings: ServingSettings,
    model: LoadedModel,
    log: PredictionLog | None,
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
        log,
        queue_size=settings.prediction_log_queue_size,
        on_drop=metrics.shadow_dropped.inc,
    )
