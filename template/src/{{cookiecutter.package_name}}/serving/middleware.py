"""One pure-ASGI middleware: request id, body size limit, metrics and the access log.

Pure ASGI rather than BaseHTTPMiddleware: it adds microseconds, not a task per request.
`POST /predict` is answered right here (the prediction fast path, `PredictService`): routing,
dependency solving and the Request object cost more than scoring a record. The FastAPI route
of the same path stays for the OpenAPI page and runs the same service code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import ServingMetrics
from .predict import UNAUTHORIZED, PredictService, request_id_factory

access_log = logging.getLogger(f"{__package__}.access")


class BodyTooLargeError(Exception):
    """The streamed request body passed the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes")
        self.limit = limit


PREDICT_PATH = "/predict"
_JSON_HEADERS = [(b"content-type", b"application/json")]


class ServingMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: ServingMetrics,
        max_body_bytes: int,
        predict: PredictService | None = None,
        on_error: Callable[[Exception, str, str], bytes] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.predict = predict
        self.on_error = on_error
        self._new_request_id = request_id_factory()
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _header(scope, b"x-request-id") or self._new_request_id()
        if self.predict is not None and scope["path"] == PREDICT_PATH and scope["method"] == "POST":
            await self._predict(self.predict, scope, receive, send, request_id, started)
            return
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
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await _send_413(send_with_id, self.max_body_bytes)
            else:
                await self.app(scope, self._limited(receive), send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started, request_id)

    async def _predict(
        self,
        service: PredictService,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        started: float,
    ) -> None:
        status = 500
        try:
            if not service.authorized(_raw_header(scope, b"x-api-key")):
                status, content = 401, UNAUTHORIZED
            else:
                declared = _header(scope, b"content-length")
                if (
                    declared is not None
                    and declared.isdigit()
                    and int(declared) > self.max_body_bytes
                ):
                    await _send_413(send, self.max_body_bytes, request_id)
                    status = 413
                    return
                body = await self._read_body(receive)
                if body is None:
                    await _send_413(send, self.max_body_bytes, request_id)
                    status = 413
                    return
                try:
                    status, content = service.handle(body, request_id, started)
                except Exception as exc:
                    if self.on_error is None:
                        raise
                    status, content = 500, self.on_error(exc, request_id, PREDICT_PATH)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        *_JSON_HEADERS,
                        (b"content-length", b"%d" % len(content)),
                        (b"x-request-id", request_id.encode("latin-1")),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": content})
        finally:
            self._observe(scope, status, time.perf_counter() - started, request_id, PREDICT_PATH)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole request body, or None once it passes the size limit."""
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _limited(self, receive: Receive) -> Receive:
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        return receive_limited

    def _observe(
        self, scope: Scope, status: int, seconds: float, request_id: str, path: str = ""
    ) -> None:
        # The route template, never the raw path: raw paths would make unbounded label sets.
        route_path = path or getattr(scope.get("route"), "path", "unmatched")
        key = (route_path, scope["method"], status)
        children = self._children.get(key)
        if children is None:
            labels = (route_path, scope["method"], str(status))
            children = (
                self.metrics.requests.labels(*labels),
                self.metrics.latency.labels(*labels),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if not access_log.isEnabledFor(logging.INFO):
            return
        access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "latency_ms": round(seconds * 1000, 3),
            },
        )


async def _send_413(send: Send, limit: int, request_id: str | None = None) -> None:
    body = b'{"detail":"request body is larger than %d bytes"}' % limit
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _raw_header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _header(scope: Scope, name: bytes) -> Any:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
