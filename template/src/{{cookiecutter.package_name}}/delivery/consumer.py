"""`{{ cookiecutter.project_slug }} consume`: score requests from a topic with the API's
own predict code.

A message's body is what POST /predict takes: a record, a list of records, or columns. It goes
through the API's `PredictService`: the contract's request models, the exported model and the
prediction log (a line a message; its request id is the message's correlation id). The answer,
the /predict response body, is published to the results topic with the same correlation id.

A message the API would answer with a 422 (not JSON, an unknown or missing field, a wrong type,
a value out of range) goes to the dead-letter topic as it came, byte for byte, with the reason
in its headers (the convention of Kafka Connect and Spring: a dead letter can be replayed as
it is), and the consumer goes on with the next message:

    dead_letter_reason   one line naming the field: "body.age: Input should be a valid integer"
    dead_letter_errors   the 422's `detail` list, as JSON
    dead_letter_source   the requests topic

Delivery is at least once: a message is acknowledged (Kafka: its offset committed) after its
answer or dead letter is published; when publishing fails, it is not, and comes back.

The broker follows STREAM_URL's scheme (FastStream, one handler for all three):

    kafka://host:9092[,host:9092]   Kafka topics; consumer group STREAM_GROUP
    redis://host:6379/0             Redis streams; consumer group STREAM_GROUP, consumer
                                    STREAM_CONSUMER (default: the host name, a pod's name)
    nats://host:4222                NATS JetStream (`nats-server -js`): a stream named
                                    STREAM_GROUP holding the three subjects, durable consumer
                                    STREAM_GROUP
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import orjson
from faststream import AckPolicy, Context, FastStream, StreamMessage
from prometheus_client import start_http_server
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..serving.app import build_predict_service
from ..serving.predict import PredictService
from ..serving.settings import ServingSettings
from ..yaml_model import describe_errors

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker
    from faststream.nats import NatsBroker
    from faststream.redis import RedisBroker

    Broker = KafkaBroker | RedisBroker | NatsBroker

logger = logging.getLogger(__name__)

SCHEMES = ("kafka", "redis", "rediss", "nats", "tls")
REASON, ERRORS, SOURCE = "dead_letter_reason", "dead_letter_errors", "dead_letter_source"
# A batch wrong in every row has an error a row: the headers keep the first ones, so a dead
# letter stays about its payload's size (a broker refuses messages over its limit, and a
# dead letter it refused would come back for ever).
REASON_ERRORS, HEADER_ERRORS = 3, 20

# publish(body, correlation_id, headers)
Publish = Callable[[bytes, str, dict[str, str]], Any]


class StreamSettingsError(ValueError):
    """The consumer's settings are invalid; the message names the setting."""


class BrokerUnreachableError(ConnectionError):
    """The broker at STREAM_URL did not answer at start-up."""


class StreamSettings(BaseSettings):
    """The broker and topics, from STREAM_* env vars (the model and log: serving's settings)."""

    model_config = SettingsConfigDict(env_prefix="STREAM_", extra="forbid", frozen=True)

    url: str = Field(description="kafka://, redis:// or nats:// URL of the broker")
    requests: str = "{{ cookiecutter.project_slug }}.requests"
    results: str = "{{ cookiecutter.project_slug }}.results"
    dead_letter: str = "{{ cookiecutter.project_slug }}.dead-letter"
    group: str = "{{ cookiecutter.project_slug }}"
    consumer: str = Field(default_factory=socket.gethostname)
    # The service's prediction metrics (by role and version, scores, live drift) for
    # Prometheus at http://METRICS_HOST:METRICS_PORT/; unset: none.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"


def load_stream_settings() -> StreamSettings:
    try:
        settings = StreamSettings()
    except ValidationError as exc:
        detail = describe_errors(exc)
        raise StreamSettingsError(f"invalid stream settings (STREAM_* env): {detail}") from None
    scheme = urlsplit(settings.url).scheme
    if scheme not in SCHEMES:
        raise StreamSettingsError(
            f"STREAM_URL={settings.url!r}: the scheme must be one of {', '.join(SCHEMES)}"
        )
    return settings


def predict_service(settings: ServingSettings) -> PredictService:
    """The API's predict path, assembled by serving/app.py, without HTTP. Its lines are
    labelled with SERVING_ROLE: a canary consumer is another one in the same group, with the
    canary model, sharing the messages as replicas do (no in-process split, no shadow)."""
    for name in ("canary_model_dir", "shadow_model_dir"):
        if getattr(settings, name) is not None:
            raise StreamSettingsError(
                f"{name.upper()} is set: the consumer splits and shadows nothing; run a canary "
                "as another consumer in the same STREAM_GROUP (SERVING_ROLE=canary, its MODEL_DIR)"
            )
    return build_predict_service(settings)


@dataclass(frozen=True)
class _Route:
    """What differs by broker: the broker, its subscriber, the two publishers, the set-up."""

    broker: Broker
    subscriber: Callable[[Any], Any]
    publish_result: Publish
    publish_dead: Publish
    prepare: Callable[[], Awaitable[None]]
    unreachable: tuple[type[Exception], ...]  # what the client raises when it cannot connect


@dataclass
class Consumer:
    """The broker with its one subscriber, and the scoring service it feeds."""

    route: _Route
    service: PredictService
    settings: StreamSettings

    @property
    def broker(self) -> Broker:
        return self.route.broker

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The prediction log's writer, the live drift counts and the metrics endpoint; the
        first two flushed on the way out."""
        started = [w for w in (self.service.prediction_log, self.service.drift) if w is not None]
        for worker in started:
            worker.start()
        endpoint = None
        if self.settings.metrics_port is not None:
            endpoint, _ = start_http_server(
                self.settings.metrics_port,
                self.settings.metrics_host,
                registry=self.service.metrics.registry,
            )
        try:
            yield
        finally:
            if endpoint is not None:
                endpoint.shutdown()
            for worker in started:
                worker.close()

    def app(self) -> FastStream:
        return FastStream(
            self.broker, lifespan=self.running, on_startup=[self.route.prepare], logger=logger
        )

    def run(self) -> None:
        """Consume until SIGINT or SIGTERM (then finish the message in hand, and flush)."""
        try:
            asyncio.run(self.app().run())
        except self.route.unreachable as exc:
            raise BrokerUnreachableError(
                f"STREAM_URL={self.settings.url}: the broker did not answer: {exc}"
            ) from None


def build_consumer(stream: StreamSettings, service: PredictService) -> Consumer:
    route = _route(stream)

    @route.subscriber
    async def score(message: Annotated[StreamMessage[Any], Context("message")]) -> None:
        request_id = message.correlation_id
        body: bytes = message.body
        try:
            status, content = await service.handle(body, request_id)
        except Exception:
            # A model failure on one message must not stop the rest: it is kept, not retried.
            logger.exception("scoring failed", extra={"request_id": request_id})
            errors = [{"loc": [], "msg": "internal error while scoring", "type": "internal"}]
            headers = _dead_letter_headers(errors, stream.requests)
            await route.publish_dead(body, request_id, headers)
            return
        if status == 200:
            await route.publish_result(content, request_id, {})
            return
        detail = orjson.loads(content)["detail"]
        if isinstance(detail, str):  # a 503: the prediction log refuses (refuse mode)
            detail = [{"loc": [], "msg": detail, "type": "unrecorded"}]
        headers = _dead_letter_headers(detail, stream.requests)
        logger.warning(
            "message refused", extra={"request_id": request_id, "reason": headers[REASON]}
        )
        await route.publish_dead(body, request_id, headers)

    return Consumer(route, service, stream)


def _dead_letter_headers(errors: list[dict[str, Any]], source: str) -> dict[str, str]:
    reason = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in errors[:REASON_ERRORS]
    )
    if len(errors) > REASON_ERRORS:
        reason += f"; and {len(errors) - REASON_ERRORS} more errors"
    return {
        REASON: reason,
        ERRORS: orjson.dumps(errors[:HEADER_ERRORS]).decode(),
        SOURCE: source,
    }


def _route(stream: StreamSettings) -> _Route:
    """The broker for STREAM_URL's scheme, its subscriber and the two publishers."""
    url = urlsplit(stream.url)
    # Acknowledged once handled; an exception (a publish that failed) leaves it to come back.
    ack = AckPolicy.NACK_ON_ERROR
    # FastStream's two lines a message (received, processed) at DEBUG, through the JSON logs.
    logs: dict[str, Any] = {"logger": logger, "log_level": logging.DEBUG}

    async def nothing() -> None:
        return None

    prepare = nothing
    if url.scheme == "kafka":
        from aiokafka.errors import KafkaConnectionError
        from faststream.kafka import KafkaBroker

        unreachable: tuple[type[Exception], ...] = (KafkaConnectionError,)
        kafka = KafkaBroker(url.netloc.split(","), **logs)
        # A new group starts at the topic's first message, not at the next one.
        subscriber: Any = kafka.subscriber(
            stream.requests, group_id=stream.group, auto_offset_reset="earliest", ack_policy=ack
        )
        results: Any = kafka.publisher(stream.results)
        dead: Any = kafka.publisher(stream.dead_letter)
        broker: Broker = kafka
    elif url.scheme in ("redis", "rediss"):
        from faststream.redis import RedisBroker, StreamSub
        from redis.exceptions import ConnectionError as RedisConnectionError

        unreachable = (RedisConnectionError,)
        redis = RedisBroker(stream.url, **logs)
        requests = StreamSub(stream.requests, group=stream.group, consumer=stream.consumer)
        subscriber = redis.subscriber(stream=requests, ack_policy=ack)
        results = redis.publisher(stream=stream.results)
        dead = redis.publisher(stream=stream.dead_letter)
        broker = redis

        async def prepare() -> None:
            await _redis_group_from_start(stream)
    else:
        from faststream.nats import JStream, NatsBroker
        from nats.errors import NoServersError

        unreachable = (NoServersError,)
        # nats-py retries a refused connection quietly (60 times, 2 s apart): say so each time.
        nats = NatsBroker(stream.url, error_cb=_log_nats_error, **logs)
        subjects = [stream.requests, stream.results, stream.dead_letter]
        jetstream = JStream(stream.group, subjects=subjects)
        # A pull consumer: replicas sharing the durable name share the messages.
        subscriber = nats.subscriber(
            stream.requests, stream=jetstream, durable=stream.group, pull_sub=True, ack_policy=ack
        )
        results = nats.publisher(stream.results, stream=jetstream)
        dead = nats.publisher(stream.dead_letter, stream=jetstream)
        broker = nats

    async def publish_result(body: bytes, request_id: str, headers: dict[str, str]) -> None:
        await results.publish(body, correlation_id=request_id, headers=headers)

    async def publish_dead(body: bytes, request_id: str, headers: dict[str, str]) -> None:
        await dead.publish(body, correlation_id=request_id, headers=headers)

    return _Route(broker, subscriber, publish_result, publish_dead, prepare, unreachable)


async def _log_nats_error(error: Exception) -> None:
    logger.warning("nats: %s", error)


async def _redis_group_from_start(stream: StreamSettings) -> None:
    """Create the consumer group at the stream's first entry, as Kafka's `earliest` does:
    FastStream would create it at the end, skipping what was sent before the first start."""
    from redis.asyncio import Redis
    from redis.exceptions import ResponseError

    client = Redis.from_url(stream.url)
    try:
        await client.xgroup_create(stream.requests, stream.group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):  # the group exists: it knows where it stopped
            raise
    finally:
        await client.aclose()
