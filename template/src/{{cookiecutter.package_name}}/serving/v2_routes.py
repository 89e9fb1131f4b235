"""The Open Inference Protocol's routes (v2.py reads and writes its tensors), beside /predict.

The health routes need no key, like /health; the model routes take the `predict` role's, like
/predict (app.py guards the routers). Inference goes through the /predict path
(`PredictService.score`): the same checks, 413, metrics, drift counts, prediction log line
and canary split; a versioned request pins that version instead of splitting. Every error
is the protocol's `{"error": ...}` (app.py's handlers answer so under /v2).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel

from .canary import Served
from .routes import JSONBytes, _served, _state, limited_body
from .v2 import InferenceResponse, ModelMetadata, ProtocolError, V2Protocol, error_body


class V2Error(BaseModel):
    error: str


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


NOT_SERVED: dict[int | str, dict[str, Any]] = {
    404: {"model": V2Error, "description": "No model of that name or version is served"}
}
Name = Annotated[str, Path(description="The served model's name (GET /v2/models/{name})")]
Version = Annotated[str, Path(description="A served version: the stable model's or the canary's")]

health = APIRouter(tags=["open inference (v2)"], default_response_class=JSONBytes)
models = APIRouter(tags=["open inference (v2)"], default_response_class=JSONBytes)


def _protocol(request: Request) -> V2Protocol:
    protocol: V2Protocol = request.app.state.v2
    return protocol


@health.get("/v2", responses={200: {"model": ServerMetadata}})
async def server_metadata(request: Request) -> Response:
    """The server's name and version, and the protocol extensions it speaks."""
    model = _state(request).slot.current
    return JSONBytes(
        orjson.dumps(
            {"name": model.name, "version": model.version, "extensions": ["binary_tensor_data"]}
        )
    )


@health.get("/v2/health/live", responses={200: {"model": Live}})
async def live() -> Response:
    """Liveness: the process answers (as /health)."""
    return JSONBytes(b'{"live":true}')


@health.get("/v2/health/ready", responses={200: {"model": Ready}, 503: {"model": Ready}})
async def ready(request: Request) -> Response:
    """Readiness: a model is loaded and the service is not shutting down (as /ready)."""
    if _state(request).draining:
        return JSONBytes(b'{"ready":false}', 503)
    return JSONBytes(b'{"ready":true}')


def _model(request: Request, name: str, version: str | None) -> Served | None:
    """The model a route names (None: the canary split chooses), or a 404 naming it."""
    split = _state(request).split
    served = split.stable.current.name
    if name != served:
        raise HTTPException(404, f"model '{name}' is not served here; '{served}' is")
    if version is None:
        return None
    chosen = split.version(version)
    if chosen is None:
        listed = ", ".join(split.versions())
        raise HTTPException(404, f"model '{name}' has no version '{version}' served ({listed})")
    return chosen


@models.get("/v2/models/{name}", responses={200: {"model": ModelMetadata}, **NOT_SERVED})
async def metadata(request: Request, name: Name) -> Response:
    """The model's inputs (one a contract feature: name, datatype, shape) and outputs."""
    return _metadata(request, name, None)


@models.get(
    "/v2/models/{name}/versions/{version}",
    responses={200: {"model": ModelMetadata}, **NOT_SERVED},
)
async def version_metadata(request: Request, name: Name, version: Version) -> Response:
    """The metadata of one served version."""
    return _metadata(request, name, version)


def _metadata(request: Request, name: str, version: str | None) -> Response:
    chosen = _model(request, name, version)
    split = _state(request).split
    model = split.stable.current if chosen is None else chosen.model
    document = _protocol(request).metadata(model, split.versions())
    return JSONBytes(document.__pydantic_serializer__.to_json(document))


@models.get("/v2/models/{name}/ready", responses={200: {"model": ModelReady}, **NOT_SERVED})
async def model_ready(request: Request, name: Name) -> Response:
    """The model is loaded and answers."""
    _model(request, name, None)
    return JSONBytes(orjson.dumps({"name": name, "ready": True}))


@models.get(
    "/v2/models/{name}/versions/{version}/ready",
    responses={200: {"model": ModelReady}, **NOT_SERVED},
)
async def version_ready(request: Request, name: Name, version: Version) -> Response:
    """That version is loaded and answers."""
    _model(request, name, version)
    return JSONBytes(orjson.dumps({"name": name, "ready": True}))


# app.py publishes the request body's schema (generated from the contract) here.
INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}
        },
    }
}
INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"model": InferenceResponse},
    400: {"model": V2Error, "description": "The input named breaks the protocol or contract"},
    413: {"model": V2Error, "description": "Body over MAX_BODY_BYTES"},
    **NOT_SERVED,
}


@models.post("/v2/models/{name}/infer", responses=INFER_ERRORS, openapi_extra=INFER_BODY)
async def infer(request: Request, name: Name) -> Response:
    """Score the inputs: the canary split chooses the model, as for /predict."""
    _model(request, name, None)
    return await _infer(request, _served(request))


@models.post(
    "/v2/models/{name}/versions/{version}/infer",
    responses=INFER_ERRORS,
    openapi_extra=INFER_BODY,
)
async def version_infer(request: Request, name: Name, version: Version) -> Response:
    """Score the inputs with that version (no split)."""
    served = _model(request, name, version)
    assert served is not None
    request.scope["state"]["served"] = served  # the metrics' labels, as _served leaves them
    return await _infer(request, served)


async def _infer(request: Request, served: Served) -> Response:
    body = await limited_body(request)
    length = request.headers.get("inference-header-content-length")
    if length is not None and not length.isdigit():
        return JSONBytes(error_body(f"Inference-Header-Content-Length: {length!r}"), 400)
    codec = _protocol(request).codec(int(length) if length is not None else None)
    predictor = _state(request).predictor
    try:
        status, content = await predictor.score(body, request.state.request_id, served, codec)
    except ProtocolError as exc:
        return JSONBytes(error_body(str(exc)), 400)
    if status != 200 and not content.startswith(b'{"error"'):
        # An answer of the shared path in /predict's form ({"detail": ...}).
        content = error_body(str(orjson.loads(content).get("detail")))
    return JSONBytes(content, status)
