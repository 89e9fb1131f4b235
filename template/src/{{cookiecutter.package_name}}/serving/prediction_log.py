"""Append every prediction to a size-rotated JSONL file without slowing the response down.

The request path only puts a dict on a bounded queue; a background thread serialises and
writes in batches. When the queue is full the record is dropped and counted, never waited on:
a slow disk must not become slow predictions. This log is what monitoring reads.

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
(.1 is the newest) when the next batch would pass PREDICTION_LOG_MAX_BYTES.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

LOG_FILE_NAME = "predictions.jsonl"
_BATCH = 512  # records written per write() call at most
_STOP = object()

logger = logging.getLogger(__name__)


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
        self._max_bytes = max_bytes
        self._backups = backups
        self._on_drop = on_drop
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def append(self, record: dict[str, Any]) -> None:
        """Queue one record; never blocks. A full queue drops the record and counts it."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._on_drop()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer (called on shutdown)."""
        if not self._thread.is_alive():
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [r for r in batch if r is not _STOP]
            try:
                self._write(batch)
            except Exception:
                # The log must never take the service down; say so loudly and keep going.
                logger.exception("prediction log write failed; %d records lost", len(batch))

    def _write(self, batch: list[dict[str, Any]]) -> None:
        size = self.path.stat().st_size if self.path.exists() else 0
        pending: list[bytes] = []
        pending_size = 0
        for record in batch:
            stamp = record.get("timestamp")
            if isinstance(stamp, float):  # the request path queues time.time(); format here
                record["timestamp"] = datetime.fromtimestamp(stamp, UTC).isoformat()
            line = orjson.dumps(
                record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
            )
            if size + pending_size + len(line) > self._max_bytes and size + pending_size > 0:
                self._append(pending)
                self._rotate()
                size, pending, pending_size = 0, [], 0
            pending.append(line)
            pending_size += len(line)
        self._append(pending)

    def _append(self, lines: list[bytes]) -> None:
        if lines:
            with self.path.open("ab") as stream:
                stream.write(b"".join(lines))

    def _rotate(self) -> None:
        oldest = self.path.with_name(f"{LOG_FILE_NAME}.{self._backups}")
        oldest.unlink(missing_ok=True)
        for index in range(self._backups - 1, 0, -1):
            source = self.path.with_name(f"{LOG_FILE_NAME}.{index}")
            if source.exists():
                source.rename(self.path.with_name(f"{LOG_FILE_NAME}.{index + 1}"))
        self.path.rename(self.path.with_name(f"{LOG_FILE_NAME}.1"))
