"""Append every prediction to a size-rotated JSONL file without slowing the response down.

The standard library's logging does the work: the request path puts the record and its time
on a bounded queue (nothing is formatted there, no `LogRecord` is built), a `QueueListener`
thread takes every queued record at once, serialises them and writes them with one system
call, and a `RotatingFileHandler` rotates. When the queue is full the record is dropped and
counted, never waited on: a slow disk must not become slow predictions. Shutdown writes every
queued line. This log is what monitoring reads.

Record format (one JSON object a line, one line a request, UTF-8):

    {"request_id": "4f1c...",            # also sent back in the X-Request-ID header
     "timestamp": "2026-11-25T20:15:02.123456+00:00",   # UTC, when the answer was ready
     "model_name": "{{ cookiecutter.project_slug }}", "model_version": "3",
     "latency_ms": 0.84,                  # validation + encoding + prediction
     "rows": 2,
     "inputs":  {"age": [42, 57], ...},   # columns as sent (id and sensitive columns too);
                                          # null = missing
     "outputs": {"predictions": [0, 1], "classes": [0, 1],
                 "probabilities": [[0.9, 0.1], [0.3, 0.7]]},   # classes/probabilities: null
                                                               # for regression
     "shadow": null | {"model_version": "4", "predictions": [...], "probabilities": [...]}}

Files: <PREDICTION_LOG_DIR>/predictions.jsonl, rotated to predictions.jsonl.1 ... .N
(.1 is the newest) when the next line would pass PREDICTION_LOG_MAX_BYTES.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from datetime import UTC, datetime
from logging.handlers import QueueListener, RotatingFileHandler
from pathlib import Path
from typing import Any

import orjson

LOG_FILE_NAME = "predictions.jsonl"
_GATHER_S = 0.05

# What the request path queues: when the answer was ready (time.time()) and the record.
_Entry = tuple[float, dict[str, Any]]


def _json_line(entry: _Entry) -> bytes:
    created, prediction = entry
    stamp = datetime.fromtimestamp(created, UTC).isoformat()
    return orjson.dumps(
        {"request_id": prediction["request_id"], "timestamp": stamp, **prediction},
        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE,
    )


class _RotatingJsonl(RotatingFileHandler):
    """The stdlib's rotation (`doRollover`), written a batch at a time: the
    stdlib `emit` stats, seeks and flushes for every record, and each of those system calls
    hands the GIL back and forth with the event loop (measured: a third of the throughput)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._size = path.stat().st_size

    def write_batch(self, entries: list[_Entry]) -> None:
        try:
            chunk: list[bytes] = []
            for entry in entries:
                line = _json_line(entry)
                # Rotation stays per line: no file grows past maxBytes because of batching.
                if self._size and self._size + len(line) > self.maxBytes:
                    self._write(chunk)
                    chunk = []
                    self.doRollover()
                    self._size = 0
                chunk.append(line)
                self._size += len(line)
            self._write(chunk)
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "prediction log write failed"}))

    def _write(self, chunk: list[bytes]) -> None:
        stream = self.stream
        assert stream is not None  # opened by __init__ and doRollover (delay=False)
        # orjson gives UTF-8 bytes: they go under the text layer (which never holds any text
        # here) rather than being decoded and encoded again.
        stream.buffer.write(b"".join(chunk))
        stream.flush()


class _BatchingListener(QueueListener):
    """The stdlib's thread, start and stop; each wake-up writes every queued record at once."""

    # What stop() queues and the stdlib's loop ends on, declared here since dequeue returns it.
    _sentinel = None

    def __init__(self, records: queue.SimpleQueue[Any], writer: _RotatingJsonl) -> None:
        super().__init__(records, writer)
        self._records = records
        self._writer = writer

    def dequeue(self, block: bool) -> Any:
        # Let records gather when there are none: waking the writer (and taking the GIL from
        # the event loop) for every record costs a busy server much more than 20 times a second.
        if self._records.empty():
            time.sleep(_GATHER_S)
        batch = [self._records.get(block)]
        while not self._records.empty() and batch[-1] is not self._sentinel:
            batch.append(self._records.get_nowait())
        if batch[-1] is self._sentinel:  # stop(): write what came before it, then end
            self._writer.write_batch(batch[:-1])
            return self._sentinel
        return batch

    def handle(self, record: Any) -> None:
        self._writer.write_batch(record)


class PredictionLog:
    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        backups: int,
        queue_size: int,
        on_drop: Callable[[], None] = lambda: None,
    ) -> None:
        self.path = Path(directory) / LOG_FILE_NAME
        # A SimpleQueue has no lock for the request path and the writer to fight over; the
        # bound is checked in append instead.
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._limit = queue_size
        self._on_drop = on_drop
        self._max_bytes = max_bytes
        self._backups = backups
        self._listener: QueueListener | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = _RotatingJsonl(self.path, self._max_bytes, self._backups)
        self._listener = _BatchingListener(self._queue, writer)
        self._listener.start()

    def append(self, prediction: dict[str, Any]) -> None:
        """Queue one record (see the format above); never blocks, drops and counts when full."""
        if self._queue.qsize() >= self._limit:
            self._on_drop()
        else:
            self._queue.put((time.time(), prediction))

    def close(self) -> None:
        """Write every queued line, then stop the writer (called on shutdown)."""
        if self._listener is not None:
            self._listener.stop()
            for handler in self._listener.handlers:
                handler.close()
            self._listener = None
