"""The consumer: FastStream's in-memory test brokers run the real handler and the API's
validation; one test runs it against a real Redis (Debian's redis-server) on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from faststream import Context, StreamMessage, TestApp
from faststream.kafka import TestKafkaBroker
from faststream.nats import TestNatsBroker
from faststream.redis import RedisBroker, TestRedisBroker
from serving.conftest import cached_export
from support import LOOPBACK_TLS
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app as cli
from {{ cookiecutter.package_name }}.delivery.consumer import (
    ERRORS,
    HEADER_ERRORS,
    REASON,
    SOURCE,
    Consumer,
    StreamSettings,
    StreamSettingsError,
    build_consumer,
    load_stream_settings,
    predict_service,
)
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME
from {{ cookiecutter.package_name }}.serving.settings import Role, ServingSettings

TEST_BROKERS = {"kafka": TestKafkaBroker, "redis": TestRedisBroker, "nats": TestNatsBroker}
URLS = {
    "kafka": "kafka://127.0.0.1:9092",
    "redis": "redis://127.0.0.1:6379",
    "nats": "nats://127.0.0.1:4222",
}


@pytest.fixture(scope="module")
def export_dir(pytestconfig: pytest.Config) -> Path:
    return cached_export(pytestconfig, "1")


@pytest.fixture
def settings(export_dir: Path, tmp_path: Path) -> ServingSettings:
    return ServingSettings(model_dir=export_dir, prediction_log_dir=tmp_path / "predictions")


@pytest.fixture(scope="module")
def record(export_dir: Path) -> dict[str, Any]:
    example: dict[str, Any] = json.loads((export_dir / "metadata.json").read_text())["example"]
    return example


class Topics:
    """What the consumer published, by topic, as FastStream messages."""

    def __init__(self, consumer: Consumer, scheme: str) -> None:
        self.results: list[StreamMessage[Any]] = []
        self.dead_letters: list[StreamMessage[Any]] = []
        for topic, into in (
            (consumer.settings.results, self.results),
            (consumer.settings.dead_letter, self.dead_letters),
        ):
            broker: Any = consumer.broker
            if scheme == "kafka":
                subscriber = broker.subscriber(topic)
            elif scheme == "redis":
                subscriber = broker.subscriber(stream=topic)
            else:  # the JetStream stream that holds the subject
                subscriber = broker.subscriber(topic, stream=consumer.settings.group)
            subscriber(_keep(into))


def _keep(into: list[StreamMessage[Any]]) -> Any:
    async def keep(message: Annotated[StreamMessage[Any], Context("message")]) -> None:
        into.append(message)

    return keep


@asynccontextmanager
async def running(
    scheme: str, settings: ServingSettings
) -> AsyncIterator[tuple[Consumer, Topics, Any]]:
    """The consumer on an in-memory broker for the scheme; yields a `send(body, id)`."""
    stream = StreamSettings(url=URLS[scheme])
    consumer = build_consumer(stream, predict_service(settings))
    topics = Topics(consumer, scheme)
    async with consumer.running(), TEST_BROKERS[scheme](consumer.broker) as broker:

        async def send(body: bytes, request_id: str) -> None:
            where = "stream" if scheme == "redis" else "subject" if scheme == "nats" else "topic"
            await broker.publish(body, correlation_id=request_id, **{where: stream.requests})

        yield consumer, topics, send


def _log_lines(settings: ServingSettings) -> dict[str, dict[str, Any]]:
    assert settings.prediction_log_dir is not None
    lines = (settings.prediction_log_dir / LOG_FILE_NAME).read_text().splitlines()
    return {line["request_id"]: line for line in map(json.loads, lines)}


def test_a_message_is_scored_like_the_api_and_logged(
    settings: ServingSettings, record: dict[str, Any]
) -> None:
    body = json.dumps([record, record]).encode()

    async def scenario() -> tuple[Topics, dict[str, Any]]:
        async with running("kafka", settings) as (_, topics, send):
            await send(body, "req-1")
        api = create_app(settings.model_copy(update={"prediction_log_dir": None}))
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            response = await client.post("/predict", content=body)
        return topics, response.json()

    topics, expected = asyncio.run(scenario())
    [result] = topics.results
    answer = json.loads(result.body)
    assert result.correlation_id == "req-1"
    del answer["request_id"], expected["request_id"]
    assert answer == expected
    logged = _log_lines(settings)["req-1"]
    assert logged["rows"] == 2
    assert logged["role"] == "stable"
    assert logged["outputs"]["predictions"] == expected["predictions"]
    assert not topics.dead_letters


BAD = {
    "not JSON": (b'{"age": 4', "body", "json_invalid"),
    "unknown field": (None, "colour", "extra_forbidden"),
    "wrong type": (None, "age", "int_type"),
}


@pytest.mark.parametrize("scheme", list(TEST_BROKERS))
def test_bad_messages_go_to_the_dead_letter_and_the_consumer_goes_on(
    scheme: str, settings: ServingSettings, record: dict[str, Any]
) -> None:
    bodies = {
        "not JSON": BAD["not JSON"][0],
        "unknown field": json.dumps({**record, "colour": "red"}).encode(),
        "wrong type": json.dumps({**record, "age": "forty"}).encode(),
    }

    async def scenario() -> Topics:
        async with running(scheme, settings) as (_, topics, send):
            for name, body in bodies.items():
                assert body is not None
                await send(body, name)
            await send(json.dumps(record).encode(), "good")
            return topics

    topics = asyncio.run(scenario())
    assert [m.correlation_id for m in topics.results] == ["good"]
    letters = {m.correlation_id: m for m in topics.dead_letters}
    assert list(letters) == list(bodies)
    for name, (_, field, error_type) in BAD.items():
        letter = letters[name]
        assert letter.body == bodies[name]  # nothing lost: the payload as it came
        assert field in letter.headers[REASON]
        assert json.loads(letter.headers[ERRORS])[0]["type"] == error_type
        assert letter.headers[SOURCE] == "{{ cookiecutter.project_slug }}.requests"
    assert set(_log_lines(settings)) == {"good"}


def test_a_batch_wrong_in_every_row_keeps_its_dead_letter_small(
    settings: ServingSettings, record: dict[str, Any]
) -> None:
    body = json.dumps([{**record, "age": "forty"}] * 100).encode()

    async def scenario() -> Topics:
        async with running("kafka", settings) as (_, topics, send):
            await send(body, "wrong-rows")
            return topics

    [letter] = asyncio.run(scenario()).dead_letters
    assert letter.body == body
    assert letter.headers[REASON].endswith("; and 97 more errors")
    assert len(json.loads(letter.headers[ERRORS])) == HEADER_ERRORS


def test_a_scoring_failure_is_a_dead_letter_not_a_stop(
    settings: ServingSettings, record: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> Topics:
        async with running("kafka", settings) as (consumer, topics, send):
            model = type(consumer.service.slot.current)
            monkeypatch.setattr(model, "predict", lambda *_: 1 / 0)
            await send(json.dumps(record).encode(), "fails")
            monkeypatch.undo()
            await send(json.dumps(record).encode(), "works")
            return topics

    topics = asyncio.run(scenario())
    [letter] = topics.dead_letters
    assert letter.correlation_id == "fails"
    assert "internal error" in letter.headers[REASON]
    assert [m.correlation_id for m in topics.results] == ["works"]


def test_prometheus_reads_the_consumers_predictions(
    settings: ServingSettings, record: dict[str, Any]
) -> None:
    port = _free_port()

    async def scenario() -> str:
        stream = StreamSettings(url=URLS["kafka"], metrics_port=port)
        consumer = build_consumer(stream, predict_service(settings))
        async with consumer.running(), TestKafkaBroker(consumer.broker) as broker:
            await broker.publish(json.dumps(record).encode(), topic=stream.requests)
            url = f"http://127.0.0.1:{port}/metrics"
            return httpx.get(url, timeout=5, verify=LOOPBACK_TLS).text

    [line] = [m for m in asyncio.run(scenario()).splitlines() if m.startswith("predictions_total")]
    assert 'role="stable"' in line
    assert line.endswith(" 1.0")


def test_a_canary_consumer_labels_its_lines(
    settings: ServingSettings, record: dict[str, Any]
) -> None:
    canary = settings.model_copy(update={"serving_role": Role.CANARY})

    async def scenario() -> None:
        async with running("kafka", canary) as (_, _, send):
            await send(json.dumps(record).encode(), "req-c")

    asyncio.run(scenario())
    assert _log_lines(canary)["req-c"]["role"] == "canary"
    split = settings.model_copy(update={"canary_model_dir": settings.model_dir})
    with pytest.raises(StreamSettingsError, match="CANARY_MODEL_DIR is set"):
        predict_service(split)


def test_settings_name_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAM_URL", raising=False)
    with pytest.raises(StreamSettingsError, match="url"):
        load_stream_settings()
    monkeypatch.setenv("STREAM_URL", "amqp://127.0.0.1:5672")
    with pytest.raises(StreamSettingsError, match=r"STREAM_URL='amqp://127\.0\.0\.1:5672'"):
        load_stream_settings()


@pytest.fixture
def command_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """For `consume` in this process: it sets up the JSON logs, which the next tests do not want."""
    monkeypatch.setenv("SERVING_CONFIG", "none")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield monkeypatch
    root.handlers[:] = handlers
    root.setLevel(level)


def test_consume_refuses_a_missing_model(command_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    command_env.setenv("STREAM_URL", "kafka://127.0.0.1:9092")
    command_env.setenv("MODEL_DIR", str(tmp_path / "nothing"))
    result = CliRunner().invoke(cli, ["consume"])
    assert result.exit_code == 1
    assert "nothing" in result.output


def test_consume_names_an_unreachable_broker(
    command_env: pytest.MonkeyPatch, export_dir: Path
) -> None:
    url = f"redis://127.0.0.1:{_free_port()}"  # nothing listens there
    command_env.setenv("STREAM_URL", url)
    command_env.setenv("MODEL_DIR", str(export_dir))
    result = CliRunner().invoke(cli, ["consume"])
    assert result.exit_code == 1
    assert f"STREAM_URL={url}: the broker did not answer" in result.output


# The real broker ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """Debian's redis-server on a free loopback port, nothing written to disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt install redis-server)")
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"redis-server did not listen on {port}")
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


def test_a_real_redis_broker(
    redis_url: str, settings: ServingSettings, record: dict[str, Any]
) -> None:
    from redis.asyncio import Redis

    stream = StreamSettings(url=redis_url)
    consumer = build_consumer(stream, predict_service(settings))

    async def scenario() -> tuple[int, int, int]:
        client = Redis.from_url(redis_url)
        producer = RedisBroker(redis_url)
        await producer.connect()
        good = json.dumps(record).encode()
        # Sent before the consumer's first start: its group begins at the stream's start.
        await producer.publish(good, stream=stream.requests, correlation_id="early")
        async with TestApp(consumer.app()):
            for name, body in (
                ("one", good),
                ("bad", b"[1, 2"),
                ("two", json.dumps({"columns": {k: [v, v] for k, v in record.items()}}).encode()),
            ):
                await producer.publish(body, stream=stream.requests, correlation_id=name)
            deadline = time.monotonic() + 10
            while await client.xlen(stream.results) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        await producer.stop()
        pending = await client.xpending(stream.requests, stream.group)
        counts = (
            await client.xlen(stream.results),
            await client.xlen(stream.dead_letter),
            pending["pending"],
        )
        await client.aclose()
        return counts

    results, dead_letters, unacknowledged = asyncio.run(scenario())
    assert (results, dead_letters, unacknowledged) == (3, 1, 0)
    logged = _log_lines(settings)
    assert set(logged) == {"early", "one", "two"}
    assert logged["two"]["rows"] == 2
