"""Append every prediction to a JSONL file without slowing the response down; keep every line.

The standard library's logging does the work: the request path puts the record and its time
on a bounded queue (nothing is formatted there, no `LogRecord` is built), a `QueueListener`
thread takes every queued record at once, serialises them and writes them with one system
call, and the file is rotated by renaming (below). When the queue is full the record is dropped and
counted, never waited on: a slow disk must not become slow predictions. Shutdown writes every
queued line. This log is what monitoring reads.

Record format (one JSON object a line, one line a request, UTF-8):

    {"request_id": "4f1c...",            # also sent back in the X-Request-ID header
     "timestamp": "2026-11-25T20:15:02.123456+00:00",   # UTC, when the answer was ready
     "model_name": "{{ cookiecutter.project_slug }}", "model_version": "3",
     "lineage": {"run_id": "9f2c...",     # that version's MLflow run, the git commit it was
                 "git_commit": "b2e4...", # trained at and the MD5 of its training data (DVC's
                 "data_hash": "d5a5..."}, # key): `{{ cookiecutter.project_slug }} trace REQUEST_ID` follows them
     "role": "stable",                    # or "canary": the model that answered (canary.py)
     "latency_ms": 0.84,                  # validation + encoding + prediction
     "rows": 2,
     "inputs":  {"age": [42, 57], ...},   # columns as sent (id, sensitive, other columns);
                                          # null = missing; personal data (pii: true) as a
                                          # keyed hash, or left out (pii.py)
     "outputs": {"predictions": [0, 1], "classes": [0, 1],
                 "probabilities": [[0.9, 0.1], [0.3, 0.7]]},   # classes/probabilities: null
                                                               # for regression
     "shadow": null | {"model_version": "4", "predictions": [...], "probabilities": [...]}}

Files in PREDICTION_LOG_DIR: every worker appends to `predictions.jsonl` (O_APPEND: one write
a batch, so workers' lines never mix). Once it holds PREDICTION_LOG_MAX_BYTES, the worker
about to write renames it to `predictions-<UTC time of rotation>-<pid>.jsonl` (names sort
by time) and starts a new one; the other workers notice the rename at their next write. The
service deletes nothing while PREDICTION_LOG_BACKUPS is 0: `compact-log` (monitoring) turns
rotated segments into Parquet and applies the retention. With N > 0, the oldest rotated JSONL
segments beyond N are deleted (for a project without monitoring).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
from collections.abc import Callable
from datetime import UTC, datetime
from logging.handlers import QueueListener
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .pii import PiiMask

LOG_FILE_NAME = "predictions.jsonl"
SEGMENT_GLOB = "predictions-*"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_GATHER_S = 0.05
# What a line's `lineage` holds: the served version's MLflow run, commit and data MD5.
LINEAGE = ("run_id", "git_commit", "data_hash")

logger = logging.getLogger(__name__)

# What the request path queues: when the answer was ready (time.time()) and the record.
_Entry = tuple[float, dict[str, Any]]


def segment_name(rotated: datetime, pid: int) -> str:
    return f"predictions-{rotated.astimezone(UTC).strftime(_STAMP)}-{pid}.jsonl"


def segment_time(name: str) -> datetime | None:
    """When a rotated segment (JSONL, or its Parquet compaction) was rotated; None otherwise."""
    parts = name.split("-")
    if len(parts) != 3 or parts[0] != "predictions":
        return None
    try:
        return datetime.strptime(parts[1], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def lineage(metadata: dict[str, Any]) -> orjson.Fragment:
    """A model's `lineage` field, serialised once when the model is loaded (model_store.py)
    and copied into every line as bytes. Measured: a single-record line costs the writer
    2.5-3.6 us with or without it (noise is larger than the field)."""
    fields = {key: str(metadata.get(key, "unknown")) for key in LINEAGE}
    return orjson.Fragment(orjson.dumps(fields))


def _json_line(entry: _Entry, mask: PiiMask | None) -> bytes:
    created, prediction = entry
    stamp = datetime.fromtimestamp(created, UTC).isoformat()
    record = {"request_id": prediction["request_id"], "timestamp": stamp, **prediction}
    if mask is not None:
        record["inputs"] = mask(record["inputs"])
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


class _SegmentWriter:
    """Appends a batch of lines with one write and rotates by renaming, never by deleting."""

    def __init__(self, path: Path, max_bytes: int, backups: int, mask: PiiMask | None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.mask = mask
        self._stream: BinaryIO = self.path.open("ab")
        # A crash can leave half a line at the end: the next record starts on its own line.
        # (Checked at start only: later, the last line may just be another worker's write in
        # progress. At worst a blank line results, which readers skip.)
        size = os.fstat(self._stream.fileno()).st_size
        if size:
            with self.path.open("rb") as tail:
                tail.seek(size - 1)
                if tail.read(1) != b"\n":
                    self._stream.write(b"\n")
                    self._stream.flush()

    def write_batch(self, entries: list[_Entry]) -> None:
        try:
            data = b"".join(_json_line(entry, self.mask) for entry in entries)
            size = self._current_size()
            if size and size + len(data) > self.max_bytes:
                self._rotate()
            self._stream.write(data)
            self._stream.flush()
        except Exception:
            logger.exception("prediction log write failed", extra={"records": len(entries)})

    def _current_size(self) -> int:
        """The size of predictions.jsonl, reopened first if another worker rotated it."""
        try:
            moved = self.path.stat().st_ino != os.fstat(self._stream.fileno()).st_ino
        except FileNotFoundError:
            moved = True
        if moved:
            self._stream.close()
            self._stream = self.path.open("ab")
        return os.fstat(self._stream.fileno()).st_size

    def _rotate(self) -> None:
        segment = self.path.with_name(segment_name(datetime.now(UTC), os.getpid()))
        with contextlib.suppress(FileNotFoundError):  # another worker rotated it a moment ago
            self.path.rename(segment)
        self._stream.close()
        self._stream = self.path.open("ab")
        if self.backups:
            rotated = sorted(self.path.parent.glob(f"{SEGMENT_GLOB}.jsonl"))
            for old in rotated[: -self.backups]:
                old.unlink(missing_ok=True)

    def close(self) -> None:
        self._stream.close()


class _BatchingListener(QueueListener):
    """The stdlib's thread, start and stop; each wake-up writes every queued record at once."""

    # What stop() queues and the stdlib's loop ends on, declared here since dequeue returns it.
    _sentinel = None

    def __init__(self, records: queue.SimpleQueue[Any], writer: _SegmentWriter) -> None:
        super().__init__(records)
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
        pii: PiiMask | None = None,
    ) -> None:
        """`pii` masks personal data in the writer thread, off the request path."""
        self.path = Path(directory) / LOG_FILE_NAME
        self._pii = pii
        # A SimpleQueue has no lock for the request path and the writer to fight over; the
        # bound is checked in append instead.
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._limit = queue_size
        self._on_drop = on_drop
        self._max_bytes = max_bytes
        self._backups = backups
        self._listener: QueueListener | None = None
        self._writer: _SegmentWriter

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = _SegmentWriter(self.path, self._max_bytes, self._backups, self._pii)
        self._listener = _BatchingListener(self._queue, self._writer)
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
            self._writer.close()
            self._listener = None
