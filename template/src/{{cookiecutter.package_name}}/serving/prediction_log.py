"""Append every prediction to a JSONL file; keep every line; never lose one silently.

`prediction_log_durability` (params.yaml) says when a request's line is safe:
- `queued`: the request path puts the record on a bounded queue and answers; a writer thread
  (the standard library's `QueueListener`) takes every queued record at once, serialises them
  and writes them with one system call. A killed process loses what is still queued (up to
  about 50 ms of records); a full queue drops the record rather than wait for a slow disk.
- `process`: the request path writes its line (one `write`, no fsync) before the answer
  leaves: a killed process loses nothing it answered; a power cut may lose what the kernel
  had not flushed.
- `machine`: as `process`, then the answer waits for the fsync that covers its line. A syncer
  thread runs one fsync for every line written since its last one (group commit), so the
  requests that arrive during an fsync share the next: a request waits for at most two.
Shutdown writes every queued line. This log is what monitoring reads.

A loss is never silent. Every record not written is counted through `on_drop(reason,
records)` (prediction_log_dropped_total{reason}): `queue_full`, `write_error` (the write
failed: disk full, file too large, I/O error) or `sync_error` (written, but its fsync failed).
A failed write leaves no torn line: the file is cut back to where the write began (or, when
another worker wrote after it, the next write starts on a new line). The first failure is
logged once with its cause, and the first write that works again says so once with the count
lost in between. With `prediction_log_on_failure: refuse`, a request whose line cannot be
written gets a 503 with the reason instead of an answer that is not on record.

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
a batch, so workers' lines never mix). Once it holds PREDICTION_LOG_MAX_BYTES (with several
workers, up to 50 ms of the others' lines more), the worker about to write renames it to
`predictions-<UTC time of rotation>-<pid>.jsonl` (names sort by time) and starts a new one;
the other workers notice the rename at their next write (a worker looks at most every
50 ms). The service deletes nothing while PREDICTION_LOG_BACKUPS is 0: `compact-log`
(monitoring) turns rotated segments into Parquet and applies the retention. With N > 0, the
oldest rotated JSONL segments beyond N are deleted (for a project without monitoring).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from logging.handlers import QueueListener
from pathlib import Path
from typing import Any

import orjson

from ..config import LogDurability, LogFailure
from .pii import PiiMask

LOG_FILE_NAME = "predictions.jsonl"
SEGMENT_GLOB = "predictions-*"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_GATHER_S = 0.05
# How often a writer looks for another worker's rotation: a stat a request would cost more
# than the write itself.
_RENAME_CHECK_S = 0.05
# What a line's `lineage` holds: the served version's MLflow run, commit and data MD5.
LINEAGE = ("run_id", "git_commit", "data_hash")
# prediction_log_dropped_total's reasons.
QUEUE_FULL, WRITE_ERROR, SYNC_ERROR = "queue_full", "write_error", "sync_error"
DROP_REASONS = (QUEUE_FULL, WRITE_ERROR, SYNC_ERROR)

logger = logging.getLogger(__name__)

# What the request path queues: when the answer was ready (time.time()) and the record.
_Entry = tuple[float, dict[str, Any]]
# Told the reason and the number of records each time records are lost.
OnDrop = Callable[[str, int], None]


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
    """Appends whole lines with one `write` each time, from any thread, and rotates by
    renaming, never by deleting. A failed write is cut back, counted and logged once."""

    def __init__(
        self, path: Path, max_bytes: int, backups: int, sync: bool, on_drop: OnDrop
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.sync = sync  # machine durability: a file is fsynced before it is let go
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self.failure: OSError | None = None  # why the last write failed; None: it worked
        self._lost = 0  # records lost since that failure
        self._failed_size = 1  # the size of the write that failed
        self._fd = self._open()
        # A crash can leave half a line at the end: the next record starts on its own line.
        # (Checked at start only: later, the last line may just be another worker's write in
        # progress. At worst a blank line results, which readers skip.)
        size = os.fstat(self._fd).st_size
        with self.path.open("rb") as tail:
            self._torn = size > 0 and os.pread(tail.fileno(), 1, size - 1) != b"\n"
        # The file's size as of the last look (every _RENAME_CHECK_S) plus this writer's own
        # lines since: no fstat a request (measured: ~2% of a single record's CPU).
        self._size = size

    def write(self, data: bytes, records: int) -> bool:
        """Append `records` whole lines; False when they could not be (counted and logged)."""
        with self._lock:
            try:
                self._rotate_if_full(len(data))
                self._append(b"\n" + data if self._torn else data)
            except OSError as exc:
                self._failed(exc, records)
                self._failed_size = len(data) + 1
                self._checked = -math.inf  # the size is looked up again at the next write
                return False
            self._size += len(data) + self._torn
            self._torn = False
            if self.failure is not None:
                self._recovered()
            return True

    def probe(self) -> bool:
        """Whether as many bytes as the write that failed can be appended now (they are
        taken back): how a service that refuses while the log fails sees, without a
        request, that it can answer again."""
        with self._lock:
            if self.failure is None:
                return True
            try:
                self._append(b"\n" * self._failed_size)
            except OSError:
                return False
            self._cut(self._failed_size)
            self._recovered()
            return True

    def dup(self) -> int:
        """A descriptor of the current file, for the syncer to fsync outside the lock."""
        with self._lock:
            return os.dup(self._fd)

    def _append(self, data: bytes) -> None:
        view, written = memoryview(data), 0
        while written < len(data):  # a write can take part of the data, then fail on the rest
            try:
                written += os.write(self._fd, view[written:])
            except OSError:
                if written:
                    self._cut(written)
                raise

    def _cut(self, written: int) -> None:
        """Take back the last `written` bytes this writer appended, unless another worker
        has appended since: then the next write starts on a new line."""
        end = os.lseek(self._fd, 0, os.SEEK_CUR)  # after an O_APPEND write: where it ended
        try:
            if os.fstat(self._fd).st_size == end:
                os.ftruncate(self._fd, end - written)
                return
        except OSError:
            pass
        self._torn = True

    def _failed(self, exc: OSError, records: int) -> None:
        self._on_drop(WRITE_ERROR, records)
        self._lost += records
        if self.failure is None:
            logger.error(
                "prediction log cannot be written: records are dropped and counted in "
                'prediction_log_dropped_total{reason="write_error"} until it can',
                extra={"path": str(self.path), "error": str(exc)},
            )
        self.failure = exc

    def _recovered(self) -> None:
        logger.warning(
            "prediction log writable again",
            extra={"path": str(self.path), "records_lost": self._lost, "error": str(self.failure)},
        )
        self.failure, self._lost = None, 0

    def _rotate_if_full(self, size: int) -> None:
        now = time.monotonic()
        if now - self._checked >= _RENAME_CHECK_S:
            self._checked = now
            own = os.fstat(self._fd)
            self._size = own.st_size  # with the other workers' lines
            try:
                moved = self.path.stat().st_ino != own.st_ino
            except FileNotFoundError:
                moved = True
            if moved:  # another worker rotated it
                self._reopen()
        if self._size and self._size + size > self.max_bytes:
            segment = self.path.with_name(segment_name(datetime.now(UTC), os.getpid()))
            with contextlib.suppress(FileNotFoundError):  # another worker rotated it just now
                self.path.rename(segment)
            self._reopen()
            if self.backups:
                rotated = sorted(self.path.parent.glob(f"{SEGMENT_GLOB}.jsonl"))
                for old in rotated[: -self.backups]:
                    old.unlink(missing_ok=True)

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o666)
        if self.sync:  # the file's name must survive a power cut too
            directory = os.open(self.path.parent, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return fd

    def _reopen(self) -> None:
        if self.sync:  # lines written to the old file are on disk before the syncer moves on
            os.fsync(self._fd)
        fd = self._open()
        os.close(self._fd)
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def close(self) -> None:
        with self._lock:
            if self.sync:
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
            os.close(self._fd)


class _Syncer:
    """Group commit: one fsync for every line written since the last one; each waiting
    request's future is settled True (on disk) or False (the fsync failed, counted)."""

    def __init__(self, writer: _SegmentWriter, on_drop: OnDrop) -> None:
        self._writer = writer
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._waiting: list[asyncio.Future[bool]] = []
        self._stopping = False
        self._failing = False  # the last fsync failed (logged once until one works)
        self._thread = threading.Thread(target=self._run, name="prediction-log-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def synced(self) -> asyncio.Future[bool]:
        """Settled by the first fsync that starts after this call (the line is written)."""
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.append(future)
        self._wake.set()
        return future

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                waiting, self._waiting = self._waiting, []
                stopping = self._stopping
            if waiting:
                self._settle(waiting, self._fsync())
            if stopping:
                return

    def _fsync(self) -> bool:
        try:
            fd = self._writer.dup()
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            if not self._failing:
                logger.error(
                    "prediction log fsync failed: answers waiting for it are counted in "
                    'prediction_log_dropped_total{reason="sync_error"} until one works',
                    extra={"error": str(exc)},
                )
            self._failing = True
            return False
        if self._failing:
            logger.warning("prediction log fsync works again")
        self._failing = False
        return True

    def _settle(self, waiting: list[asyncio.Future[bool]], synced: bool) -> None:
        if not synced:
            self._on_drop(SYNC_ERROR, len(waiting))
        loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]] = {}
        for future in waiting:
            loops.setdefault(future.get_loop(), []).append(future)
        for loop, futures in loops.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                loop.call_soon_threadsafe(_resolve, futures, synced)

    def close(self) -> None:
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._thread.join()


def _resolve(futures: list[asyncio.Future[bool]], synced: bool) -> None:
    for future in futures:
        if not future.done():  # the client may have gone (cancelled)
            future.set_result(synced)


class _BatchingListener(QueueListener):
    """The stdlib's thread, start and stop; each wake-up writes every queued record at once."""

    # What stop() queues and the stdlib's loop ends on, declared here since dequeue returns it.
    _sentinel = None

    def __init__(
        self, records: queue.SimpleQueue[Any], write: Callable[[list[_Entry]], Any]
    ) -> None:
        super().__init__(records)
        self._records = records
        self._write = write

    def dequeue(self, block: bool) -> Any:
        # Let records gather when there are none: waking the writer (and taking the GIL from
        # the event loop) for every record costs a busy server much more than 20 times a second.
        if self._records.empty():
            time.sleep(_GATHER_S)
        batch = [self._records.get(block)]
        while not self._records.empty() and batch[-1] is not self._sentinel:
            batch.append(self._records.get_nowait())
        if batch[-1] is self._sentinel:  # stop(): write what came before it, then end
            self._write(batch[:-1])
            return self._sentinel
        return batch

    def handle(self, record: Any) -> None:
        self._write(record)


class PredictionLog:
    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        backups: int,
        queue_size: int,
        durability: LogDurability = LogDurability.PROCESS,
        on_failure: LogFailure = LogFailure.SERVE,
        on_drop: OnDrop = lambda reason, records: None,
        pii: PiiMask | None = None,
    ) -> None:
        """`pii` masks personal data (in the writer thread when `queued`)."""
        self.path = Path(directory) / LOG_FILE_NAME
        self.durability = LogDurability(durability)
        self._refuse = on_failure is LogFailure.REFUSE
        self._pii = pii
        # A SimpleQueue has no lock for the request path and the writer to fight over; the
        # bound is checked in append instead.
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._limit = queue_size
        self._on_drop = on_drop
        self._max_bytes = max_bytes
        self._backups = backups
        self._listener: QueueListener | None = None
        self._syncer: _Syncer | None = None
        self._writer: _SegmentWriter | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        machine = self.durability is LogDurability.MACHINE
        self._writer = _SegmentWriter(
            self.path, self._max_bytes, self._backups, machine, self._on_drop
        )
        if self.durability is LogDurability.QUEUED:
            self._listener = _BatchingListener(self._queue, self._write)
            self._listener.start()
        if machine:
            self._syncer = _Syncer(self._writer, self._on_drop)
            self._syncer.start()

    def append(self, prediction: dict[str, Any]) -> bool:
        """Queue one record (`queued`: never blocks; drops and counts when full) or write it
        now; False when it is not on its way to the file (counted)."""
        if self.durability is LogDurability.QUEUED:
            if self._queue.qsize() >= self._limit:
                self._on_drop(QUEUE_FULL, 1)
                return False
            self._queue.put((time.time(), prediction))
            return True
        return self._write([(time.time(), prediction)])

    async def record(self, prediction: dict[str, Any]) -> str | None:
        """`append`, then at `machine` wait for the fsync that covers the line. None: the
        answer may leave; else why it may not (`prediction_log_on_failure: refuse`)."""
        written = self.append(prediction)
        if written and self._syncer is not None:
            written = await self._syncer.synced()
        if written or not self._refuse:
            return None
        return (
            "not answered: the prediction log cannot be written and this service answers "
            "nothing off the record (prediction_log_on_failure: refuse): "
            f"{self.failure or 'its fsync failed'}"
        )

    @property
    def failure(self) -> OSError | None:
        """Why the log's last write failed; None while it writes."""
        return None if self._writer is None else self._writer.failure

    def ready(self) -> bool:
        """/ready, as far as the log goes: always when the service answers through a
        failure; when it refuses, whether a line can be written now (tried again when the
        last write failed)."""
        return not self._refuse or self._writer is None or self._writer.probe()

    def _write(self, entries: list[_Entry]) -> bool:
        if self._writer is None:
            raise RuntimeError("PredictionLog.start() must come before the first write")
        try:
            data = b"".join(_json_line(entry, self._pii) for entry in entries)
        except TypeError:  # orjson cannot serialise a value: a bug, not the disk
            logger.exception("prediction log record not serialisable")
            self._on_drop(WRITE_ERROR, len(entries))
            return False
        return self._writer.write(data, len(entries))

    def close(self) -> None:
        """Write every queued line, then stop the writer (called on shutdown)."""
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._syncer is not None:
            self._syncer.close()
            self._syncer = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
