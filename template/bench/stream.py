"""`make bench-stream`: messages a second through `consume` on a real Redis, beside
the HTTP API on the same bodies.

Each run, for messages of 1 record and of 100 rows (columns, the cheapest batch shape):
- the consumer: a fresh requests stream on Debian's redis-server (loopback) is filled with
  messages first, then `consume` starts on it, prediction log on. It drains a
  backlog, so its speed is measured, not the producer's; its start-up is left out, since the
  rate is taken between the first and the last result's entry ids (Redis' clock, in ms);
- the HTTP API (uvicorn, one worker, prediction log on) gets the same bodies for a few seconds
  with one request at a time (c=1: the consumer, too, handles one message at a time) and at
  c=8 (bench/bench.py's load generator: wrk when installed).
Figures are medians over the runs. It prints figures and asserts nothing.

Usage: python bench/stream.py [--model-dir models/champion] [--runs 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faststream.redis import RedisBroker
from redis.asyncio import Redis

from bench import SERVER_ENV, Server, Target, _batch_columns, _drive, _free_port
from {{ cookiecutter.package_name }}.serving.contract_models import example_record
from {{ cookiecutter.package_name }}.serving.model_store import load_model_dir
from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME

# Messages a run: enough for a couple of seconds of draining at each size.
MESSAGES = {1: 3_000, 100: 600}
CONCURRENCY = (1, 8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models/champion"))
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3, help="duration of each HTTP cell")
    args = parser.parse_args()
    if not (args.model_dir / "metadata.json").is_file():
        print(f"error: no exported model in {args.model_dir}; run `make export-model` first")
        return 1
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        print("error: redis-server is not installed (Debian: apt install redis-server)")
        return 1
    model = load_model_dir(args.model_dir)
    bodies = {
        1: json.dumps(example_record(model.contract)).encode(),
        100: json.dumps({"columns": _batch_columns(model, 100)}).encode(),
    }
    load = "wrk" if shutil.which("wrk") else "python"
    print(f"model: {args.model_dir} ({model.name} v{model.version}); {args.runs} runs")
    print(f"HTTP load generator: {load}; {os.cpu_count()} cores; prediction log on everywhere\n")

    stream: dict[int, list[float]] = {size: [] for size in bodies}
    http: dict[tuple[int, int], list[float]] = {(s, c): [] for s in bodies for c in CONCURRENCY}
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as scratch:
        work = Path(scratch)
        port = _free_port()
        broker = subprocess.Popen(  # noqa: S603 - the system's redis-server, fixed arguments
            [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            cwd=work,
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}"
        api_port = _free_port()
        api_url = f"http://127.0.0.1:{api_port}/predict"
        api = Server(
            [
                *(sys.executable, "-m", "uvicorn", "--factory", "--host", "127.0.0.1"),
                "{{ cookiecutter.package_name }}.serving.app:create_app",
                *("--port", str(api_port), "--workers", "1", "--no-access-log"),
            ],
            {"MODEL_DIR": str(args.model_dir), "PREDICTION_LOG_DIR": str(work / "api-log")},
            Target("api", api_url, bodies[1], None),
        )
        try:
            _wait_for_port(port)
            for run in range(args.runs):
                for size, body in bodies.items():
                    rate, logged = _consume(url, body, MESSAGES[size], args.model_dir, work, run)
                    stream[size].append(rate)
                    print(
                        f"run {run + 1}: consumer, {size} row(s) a message: {rate:,.0f} msg/s",
                        end="",
                    )
                    print(f" ({logged:,} prediction log lines for {MESSAGES[size]:,} messages)")
                    for concurrency in CONCURRENCY:
                        cell = _drive(load, api_url, body, concurrency, args.seconds)
                        http[size, concurrency].append(cell.requests_per_s)
        finally:
            api.stop()
            broker.terminate()
            broker.wait(10)
    _report(stream, http)
    return 0


def _consume(
    url: str, body: bytes, count: int, model_dir: Path, work: Path, run: int
) -> tuple[float, int]:
    """Fill a fresh stream, start the consumer on it, wait for every result; messages a
    second between the first and the last result, and the prediction log's line count."""
    name = f"bench-{run}-{len(body)}"
    topics = {
        "STREAM_REQUESTS": f"{name}.requests",
        "STREAM_RESULTS": f"{name}.results",
        "STREAM_DEAD_LETTER": f"{name}.dead-letter",
        "STREAM_GROUP": name,
    }
    asyncio.run(_fill(url, topics["STREAM_REQUESTS"], body, count))
    log_dir = work / name
    consumer = subprocess.Popen(  # noqa: S603 - the project's own command
        [str(Path(sys.executable).parent / "{{ cookiecutter.project_slug }}"), "consume"],
        env={
            **os.environ,
            **SERVER_ENV,
            **topics,
            "STREAM_URL": url,
            "MODEL_DIR": str(model_dir),
            "PREDICTION_LOG_DIR": str(log_dir),
        },
        stdout=subprocess.DEVNULL,
    )
    try:
        first, last, dead = asyncio.run(_wait_for_results(url, topics, count))
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(30)
    if dead:
        print(f"  warning: {dead} dead letters in {topics['STREAM_DEAD_LETTER']}")
    lines = (log_dir / LOG_FILE_NAME).read_bytes().count(b"\n")
    return (count - 1) / max((last - first) / 1000, 1e-3), lines


async def _fill(url: str, stream: str, body: bytes, count: int) -> None:
    producer = RedisBroker(url)
    await producer.connect()
    for index in range(count):
        await producer.publish(body, stream=stream, correlation_id=f"{stream}-{index}")
    await producer.stop()


async def _wait_for_results(
    url: str, topics: dict[str, str], count: int, timeout: float = 300
) -> tuple[int, int, int]:
    """When the first and the last result were written (ms), and how many dead letters."""
    client = Redis.from_url(url)
    results, dead_letters = topics["STREAM_RESULTS"], topics["STREAM_DEAD_LETTER"]
    deadline = time.monotonic() + timeout
    try:
        while True:
            done = await client.xlen(results) + await client.xlen(dead_letters)
            if done >= count:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{done} of {count} messages answered in {timeout:.0f} s")
            await asyncio.sleep(0.05)
        [(first, _)] = await client.xrange(results, count=1)
        [(last, _)] = await client.xrevrange(results, count=1)
        dead = await client.xlen(dead_letters)
    finally:
        await client.aclose()
    return _entry_ms(first), _entry_ms(last), dead


def _entry_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[0])


def _wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _report(stream: dict[int, list[float]], http: dict[tuple[int, int], list[float]]) -> None:
    print(
        "\n| rows a message | consumer msg/s | rows/s | HTTP c=1 req/s | HTTP c=8 req/s "
        "| consumer / HTTP c=1 |"
    )
    print("|---|---|---|---|---|---|")
    for size, rates in stream.items():
        rate = statistics.median(rates)
        one, eight = (statistics.median(http[size, c]) for c in CONCURRENCY)
        print(
            f"| {size} | {rate:,.0f} | {rate * size:,.0f} | {one:,.0f} | {eight:,.0f} "
            f"| {rate / max(one, 1e-9):.2f}x |"
        )
    print("\n(medians; every run above)")


if __name__ == "__main__":
    sys.exit(main())
