"""Append every prediction to a size-rotated JSONL file without slowing the response down.

The standard library's logging does the work: the request path hands a record to a
`QueueHandler` (a bounded queue; nothing is formatted there), a `QueueListener` thread
serialises it and a `RotatingFileHandler` writes and rotates. When the queue is full the
record is dropped and counted, never waited on: a slow disk must not become slow predictions.
Shutdown writes every queued line. This log is what monitoring reads.

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
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler
from pathlib import Path
from typing import Any

import orjson

LOG_FILE_NAME = "predictions.jsonl"
_GATHER_S = 0.05


class _JsonLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prediction: dict[str, Any] = record.msg  # type: ignore[assignment]
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat()
        return orjson.dumps(
            {"request_id": prediction["request_id"], "timestamp": stamp, **prediction},
            option=orjson.OPT_SERIALIZE_NUMPY,
        ).decode()


class _BoundedQueueHandler(QueueHandler):
    # A SimpleQueue has no lock for the request path and the writer to fight over; the bound
    # is checked here instead.
    def __init__(
        self, records: queue.SimpleQueue[Any], limit: int, on_drop: Callable[[], None]
    ) -> None:
        super().__init__(records)
        self._records = records
        self._limit = limit
        self._on_drop = on_drop

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record  # formatting is the writer thread's job, not the request's

    def enqueue(self, record: logging.LogRecord) -> None:
        if self._records.qsize() >= self._limit:
            self._on_drop()
        else:
            self._records.put(record)


class _BatchingListener(QueueListener):
    def __init__(self, records: queue.SimpleQueue[Any], writer: logging.Handler) -> None:
        super().__init__(records, writer)
        self._records = records

    def dequeue(self, block: bool) -> Any:
        # Let records gather when there are none: waking the writer (and taking the GIL from
        # the event loop) for every record costs a busy server much more than 20 times a second.
        if self._records.empty():
            time.sleep(_GATHER_S)
        return self._records.get(block)


class _RotatingJsonl(RotatingFileHandler):
    """The stdlib's rotation (`doRollover`), with an `emit` that makes no system call a line:
    the stdlib one stats, seeks, asks the size and flushes for every record, and each of those
    hands the GIL back and forth with the event loop (measured: a third of the throughput)."""

    def __init__(
        self, path: Path, records: queue.SimpleQueue[Any], max_bytes: int, backups: int
    ) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._records = records
        self._size = path.stat().st_size

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            if self._size and self._size + len(line) > self.maxBytes:
                self.doRollover()
                self._size = 0
            stream = self.stream
            assert stream is not None  # opened by __init__ and doRollover (delay=False)
            stream.write(line)
            self._size += len(line)  # characters: bytes too, but for non-ASCII text
            if self._records.empty():  # the burst is written: one flush for all of it
                stream.flush()
        except Exception:
            self.handleError(record)


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
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._handler = _BoundedQueueHandler(self._queue, queue_size, on_drop)
        self._max_bytes = max_bytes
        self._backups = backups
        self._listener: QueueListener | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = _RotatingJsonl(self.path, self._queue, self._max_bytes, self._backups)
        writer.setFormatter(_JsonLine())
        self._listener = _BatchingListener(self._queue, writer)
        self._listener.start()

    def append(self, prediction: dict[str, Any]) -> None:
        """Queue one record (see the format above); never blocks, drops and counts when full."""
        self._handler.handle(
            logging.LogRecord(__name__, logging.INFO, "", 0, prediction, None, None)
        )

    def close(self) -> None:
        """Write every queued line, then stop the writer (called on shutdown)."""
        if self._listener is not None:
            self._listener.stop()
            for handler in self._listener.handlers:
                handler.close()
            self._listener = None
