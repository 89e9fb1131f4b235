"""One pure-ASGI middleware that only observes: request id, metrics and the access log.

Metrics are labelled with the role and model version of the model that answered, which the
/predict route leaves in the request's state (`served`); other routes get `default_labels`.

Pure ASGI rather than BaseHTTPMiddleware: it adds microseconds, not a task per request.
It answers nothing; every request goes through FastAPI's routing.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from itertools import count
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import ServingMetrics

access_log = logging.getLogger(f"{__package__}.access")


class ObservingMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: ServingMetrics, default_labels: Callable[[], tuple[str, str]]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.default_labels = default_labels
        # Like a uuid4's 32 hex digits, without reading os.urandom on every request.
        self._id_prefix = secrets.token_hex(10)
        self._id_counter = count()
        self._children: dict[tuple[str, str, int, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = header_value(scope, b"x-request-id")
        if request_id is None:
            request_id = f"{self._id_prefix}{next(self._id_counter):012x}"
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started, request_id)

    def _observe(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        # The route template, never the raw path: raw paths would make unbounded label sets.
        route = getattr(scope.get("route"), "path", "unmatched")
        served = scope["state"].get("served")
        if served is None:
            role, version = self.default_labels()
        else:
            role, version = served.role.value, served.model.version
        key = (route, scope["method"], status, role, version)
        children = self._children.get(key)
        if children is None:
            labels = (route, scope["method"], str(status), role, version)
            children = (self.metrics.requests.labels(*labels), self.metrics.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    "role": role,
                    "model_version": version,
                },
            )


def header_value(scope: Scope, name: bytes) -> str | None:
    """The request header `name` (lower-case bytes, as ASGI gives them), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
