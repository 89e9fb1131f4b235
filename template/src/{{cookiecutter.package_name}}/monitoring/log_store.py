"""The prediction log read back as flat rows, in bounded memory, and compacted to Parquet.

The service (serving/prediction_log.py) appends one JSON line a request to
`predictions.jsonl` and renames it to `predictions-<UTC stamp>-<pid>.jsonl` when it is full;
it never deletes one. `compact` turns each rotated segment into
`predictions-<UTC stamp>-<pid>.parquet` (the flat rows below, one row group per chunk) and
only then removes the JSONL file; retention removes Parquet segments older than
`monitoring.log.retention_days`. `read_log` reads all three kinds as one window.

One row a predicted row: `request_id`, `row` (its position in the request), `timestamp`
(UTC), `model_version`, every contract column of the request (`id`, features, sensitive and
other columns: numbers and booleans as float64 with NaN, categories and text as strings with
NaN; personal data as the log holds it, hashed or absent), `prediction` (as logged), `score`
(positive-class probability for binary, top-class probability for multiclass, the value for
regression), `proba_<class>` for classification, and the request's `latency_ms`,
`model_name`, `role` and lineage (`run_id`, `git_commit`, `data_hash`; "unknown" for lines
logged before they were).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..schema import ColumnType, Contract, TaskKind
from ..serving.prediction_log import LINEAGE, LOG_FILE_NAME, SEGMENT_GLOB, segment_time

# Rows a chunk holds (and a Parquet row group): about 10 MB for 20 features.
CHUNK_ROWS = 65_536
# Decoded JSONL records held at once: single-record requests cost about 2 KB each as Python
# objects, so their chunks end here, well before CHUNK_ROWS.
CHUNK_REQUESTS = 8_192
# A worker may append one last batch to a segment another worker just rotated (it notices the
# rename on its next write): segments are compacted, and pruned by their stamp, with this slack.
ROTATION_GRACE = timedelta(seconds=60)
_LIGHT = ["timestamp", "row", "model_version"]
# Where compaction keeps the lines it could not read, as they were: nothing is lost.
REJECTED = "rejected"


class LogError(ValueError):
    """The prediction log cannot be read; the message names the file."""


@dataclass(frozen=True)
class _Part:
    path: Path
    skip_requests: int = 0  # the segment's oldest requests that `last` leaves out


@dataclass
class LogWindow:
    """The requests of a window; `chunks()` yields their rows a bounded frame at a time."""

    contract: Contract
    since: datetime | None
    until: datetime | None
    rows: int = 0
    requests: int = 0
    corrupt_lines: int = 0  # skipped: not JSON, or not a prediction record
    versions: dict[str, int] = field(default_factory=dict)  # rows per model version
    _parts: list[_Part] = field(default_factory=list)

    def chunks(self) -> Iterator[pd.DataFrame]:
        """The window's rows, oldest segment first; re-reads the files on every call."""
        for part in self._parts:
            seen = 0  # requests of this segment already inside the window
            for frame in _frames(part.path, self.contract):
                frame = self._within(frame)
                if part.skip_requests:
                    ordinal = seen + (frame["row"] == 0).cumsum()
                    seen = int(ordinal.iloc[-1]) if len(ordinal) else seen
                    frame = frame[ordinal > part.skip_requests]
                if len(frame):
                    yield frame.reset_index(drop=True)

    def _within(self, frame: pd.DataFrame) -> pd.DataFrame:
        keep = np.ones(len(frame), dtype=bool)
        if self.since is not None:
            keep &= (frame["timestamp"] >= self.since).to_numpy()
        if self.until is not None:
            keep &= (frame["timestamp"] < self.until).to_numpy()
        return frame if keep.all() else frame[keep]


def read_log(
    directory: Path,
    contract: Contract,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    last: int | None = None,
) -> LogWindow:
    """The requests logged in [since, until) (UTC when a time has no zone), or the newest
    `last` of them.

    Counters are computed here from the light columns (time, row, version); with `last`,
    segments are read newest first and older ones are not opened once `last` is reached.
    """
    since, until = _utc(since), _utc(until)
    if last is not None and last < 1:
        raise LogError(f"--last must be at least 1, got {last}")
    window = LogWindow(contract, since, until)
    parts: list[_Part] = []
    for path in reversed(segments(Path(directory))):
        if not _may_overlap(path, since):
            continue
        requests, rows, versions, corrupt = _count(window, path)
        window.corrupt_lines += corrupt
        if not requests:
            continue
        skip = 0
        if last is not None and window.requests + requests > last:
            skip = window.requests + requests - last
            requests, rows, versions = _count_after(window, path, skip)
        window.requests += requests
        window.rows += rows
        for version, count in versions.items():
            window.versions[version] = window.versions.get(version, 0) + count
        parts.append(_Part(path, skip))
        if last is not None and window.requests >= last:
            break
    window._parts = parts[::-1]
    return window


def segments(directory: Path) -> list[Path]:
    """Every segment of the log, oldest first: Parquet where a segment is compacted (a JSONL
    twin left by an interrupted compaction is ignored), rotated JSONL, then the active file."""
    if not directory.is_dir():
        return []
    found: dict[str, Path] = {}
    for path in sorted(directory.glob(SEGMENT_GLOB)):  # ".jsonl" sorts before ".parquet"
        if path.suffix in (".jsonl", ".parquet"):
            found[path.stem] = path
    active = directory / LOG_FILE_NAME
    return [*(found[stem] for stem in sorted(found)), *([active] if active.is_file() else [])]


def _may_overlap(path: Path, since: datetime | None) -> bool:
    """False when the segment was rotated before `since` (its name says when)."""
    stamp = segment_time(path.name)
    return since is None or stamp is None or stamp + ROTATION_GRACE >= since


def _count(window: LogWindow, path: Path) -> tuple[int, int, dict[str, int], int]:
    """Requests, rows and rows per version inside the window; corrupt lines of the file."""
    corrupt: list[bytes] = []
    requests = rows = 0
    versions: Counter[str] = Counter()
    for frame in _frames(path, window.contract, light=True, corrupt=corrupt):
        frame = window._within(frame)
        requests += int((frame["row"] == 0).sum())
        rows += len(frame)
        versions.update(Counter(frame["model_version"].tolist()))
    return requests, rows, dict(versions), len(corrupt)


def _count_after(window: LogWindow, path: Path, skip: int) -> tuple[int, int, dict[str, int]]:
    part = LogWindow(window.contract, window.since, window.until, _parts=[_Part(path, skip)])
    versions: Counter[str] = Counter()
    requests = rows = 0
    for frame in part.chunks():
        requests += int((frame["row"] == 0).sum())
        rows += len(frame)
        versions.update(Counter(frame["model_version"].tolist()))
    return requests, rows, dict(versions)


def _utc(moment: datetime | None) -> datetime | None:
    """The log's times are UTC, so a time without a zone is taken as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _frames(
    path: Path, contract: Contract, *, light: bool = False, corrupt: list[bytes] | None = None
) -> Iterator[pd.DataFrame]:
    twin = path.with_suffix(".parquet")
    if path.suffix == ".jsonl" and not path.exists() and twin.exists():
        path = twin  # compacted since read_log listed it: the same rows
    if path.suffix == ".parquet":
        yield from _parquet_frames(path, _LIGHT if light else None)
    else:
        yield from _jsonl_frames(path, contract, light=light, corrupt=corrupt)


def _parquet_frames(path: Path, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    try:
        file = pq.ParquetFile(path)
        for group in range(file.num_row_groups):
            table = file.read_row_group(group, columns=columns)
            yield table.to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise LogError(f"{path}: not a readable Parquet segment ({exc})") from None


def _jsonl_frames(
    path: Path, contract: Contract, *, light: bool, corrupt: list[bytes] | None
) -> Iterator[pd.DataFrame]:
    """Flat frames of at most about CHUNK_ROWS rows; undecodable or malformed lines are skipped and
    collected in `corrupt`. The active file's unterminated last line is still being written:
    it is left out."""
    records: list[dict[str, Any]] = []
    rows = 0
    try:
        with path.open("rb") as lines:
            for line in lines:
                if not line.strip():  # a blank line: a crash's torn line was ended (writer)
                    continue
                record = _record(line, contract)
                if record is None:
                    if corrupt is not None and (line.endswith(b"\n") or path.name != LOG_FILE_NAME):
                        corrupt.append(line)
                    continue
                records.append(record)
                rows += record["rows"]
                if rows >= CHUNK_ROWS or len(records) >= CHUNK_REQUESTS:
                    yield _flatten(records, contract, light)
                    records, rows = [], 0
    except OSError as exc:
        raise LogError(f"{path}: cannot read the prediction log ({exc})") from None
    if records:
        yield _flatten(records, contract, light)


def _record(line: bytes, contract: Contract) -> dict[str, Any] | None:
    """The decoded record, or None when the line is not a whole, well-formed one."""
    try:
        record = orjson.loads(line)
        rows = record["rows"]
        outputs, inputs = record["outputs"], record["inputs"]
        record["_time"] = datetime.fromisoformat(record["timestamp"])
        ok = (
            isinstance(record["request_id"], str)
            and isinstance(rows, int)
            and isinstance(inputs, dict)
            and len(outputs["predictions"]) == rows
            and all(isinstance(v, list) and len(v) == rows for v in inputs.values())
        )
        if contract.target.is_classification:
            probabilities = outputs["probabilities"]
            ok = ok and len(probabilities) == rows and len(outputs["classes"]) > 1
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return record if ok else None


def _flatten(records: list[dict[str, Any]], contract: Contract, light: bool) -> pd.DataFrame:
    counts = np.fromiter((r["rows"] for r in records), dtype=np.int64, count=len(records))
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    stamps = np.array([r["_time"].timestamp() * 1e6 for r in records], dtype=np.int64)
    data: dict[str, Any] = {
        "timestamp": pd.to_datetime(np.repeat(stamps, counts), unit="us", utc=True).as_unit("ns"),
        "row": np.arange(total, dtype=np.int64) - starts,
        "model_version": _repeat([str(r["model_version"]) for r in records], counts),
    }
    if light:
        return pd.DataFrame(data)
    data["request_id"] = _repeat([r["request_id"] for r in records], counts)
    for name, kind in _input_columns(contract):
        values = list(
            chain.from_iterable(r["inputs"].get(name) or [None] * r["rows"] for r in records)
        )
        data[name] = _typed(values, kind)
    predictions = list(chain.from_iterable(r["outputs"]["predictions"] for r in records))
    data["prediction"] = predictions
    data.update(_scores(records, contract, predictions))
    data["latency_ms"] = np.repeat(
        np.array([r.get("latency_ms") for r in records], dtype=np.float64), counts
    )
    data["model_name"] = _repeat([str(r.get("model_name")) for r in records], counts)
    # Lines from before the canary split was served by the stable model.
    data["role"] = _repeat([str(r.get("role", "stable")) for r in records], counts)
    lineages = [r.get("lineage") or {} for r in records]
    for key in LINEAGE:
        data[key] = _repeat([str(line.get(key, "unknown")) for line in lineages], counts)
    frame = pd.DataFrame(data)
    return frame[_ordered(frame.columns)]


def _ordered(columns: pd.Index) -> list[str]:
    head = ["request_id", "row", "timestamp", "model_version"]
    return [*head, *(c for c in columns if c not in head)]


def _repeat(values: list[Any], counts: np.ndarray) -> pd.Series:
    return pd.Series(np.repeat(np.array(values, dtype=object), counts), dtype="str")


def _input_columns(contract: Contract) -> list[tuple[str, ColumnType | None]]:
    """Logged input columns and their types (the id's type is not in the contract: str)."""
    head: list[tuple[str, ColumnType | None]] = [(contract.id, None)] if contract.id else []
    return [*head, *((c.name, c.type) for c in contract.described)]


def _typed(values: list[Any], kind: ColumnType | None) -> Any:
    if kind is None or kind in (ColumnType.CATEGORICAL, ColumnType.TEXT):
        return pd.Series(values, dtype="str")  # None -> NaN; an integer id -> its digits
    try:
        return np.array(values, dtype=np.float64)  # None -> NaN, booleans -> 0.0 / 1.0
    except (TypeError, ValueError):
        return np.array([_number(v) for v in values], dtype=np.float64)


def _number(value: Any) -> float:
    """A value the service let through but that is no number (a hand-edited log): missing."""
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _scores(
    records: list[dict[str, Any]], contract: Contract, predictions: list[Any]
) -> dict[str, np.ndarray]:
    target = contract.target
    if not target.is_classification:
        return {"score": _typed(predictions, ColumnType.NUMERIC)}
    assert target.classes is not None  # classification targets have classes (schema.py)
    names = [str(c) for c in target.classes]
    parts = []
    for record in records:
        outputs = record["outputs"]
        # Columns follow the contract's classes whatever order the model logged them in.
        order = {str(c): i for i, c in enumerate(outputs["classes"])}
        matrix = np.array(outputs["probabilities"], dtype=np.float64).reshape(record["rows"], -1)
        parts.append(
            np.column_stack(
                [matrix[:, order[n]] if n in order else np.full(len(matrix), np.nan) for n in names]
            )
        )
    probabilities = np.concatenate(parts) if parts else np.empty((0, len(names)))
    scores = probabilities[:, -1] if target.kind is TaskKind.BINARY else probabilities.max(axis=1)
    return {"score": scores, **{f"proba_{n}": probabilities[:, i] for i, n in enumerate(names)}}


def find_request(directory: Path, contract: Contract, request_id: str) -> pd.DataFrame:
    """The request's rows (log_store's flat rows), from the newest segment holding it; empty
    when no segment does."""
    needle = orjson.dumps(request_id)
    for path in reversed(segments(directory)):
        rows: pd.DataFrame
        if path.suffix == ".parquet":
            rows = pq.read_table(path, filters=[("request_id", "==", request_id)]).to_pandas()
        else:
            rows = _jsonl_request(path, contract, needle, request_id)
        if len(rows):
            return rows.reset_index(drop=True)
    return pd.DataFrame()


def _jsonl_request(path: Path, contract: Contract, needle: bytes, request_id: str) -> pd.DataFrame:
    try:
        with path.open("rb") as lines:
            # The id's bytes first: decoding every line of a large segment would cost seconds.
            for line in lines:
                if needle in line:
                    record = _record(line, contract)
                    if record is not None and record["request_id"] == request_id:
                        return _flatten([record], contract, light=False)
    except OSError as exc:
        raise LogError(f"{path}: cannot read the prediction log ({exc})") from None
    return pd.DataFrame()


def oldest_entry(directory: Path, contract: Contract) -> datetime | None:
    """When the log's oldest remaining request was answered; None for an empty log."""
    for path in segments(directory):
        for frame in _frames(path, contract, light=True):
            if len(frame):
                oldest: datetime = frame["timestamp"].min().to_pydatetime()
                return oldest
    return None


@dataclass(frozen=True)
class Compaction:
    compacted: list[Path]  # the Parquet segments written
    removed: list[Path]  # Parquet segments past retention
    rows: int
    corrupt_lines: int  # kept as they were in <directory>/rejected/<segment name>


def compact(
    directory: Path,
    contract: Contract,
    retention_days: int,
    now: datetime | None = None,
) -> Compaction:
    """Rotated JSONL segments -> Parquet (each JSONL file removed once its Parquet twin is
    complete), then Parquet segments rotated more than `retention_days` ago are removed.
    The active file and anything rotated in the last ROTATION_GRACE are left alone. One run
    at a time (a lock file): cron and the monitor may start it together."""
    import fcntl  # POSIX only, like the service's deployment targets

    directory = Path(directory)
    if not directory.is_dir():
        return Compaction([], [], 0, 0)
    with (directory / ".compact.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return _compact(directory, contract, retention_days, now or datetime.now(UTC))


def _compact(directory: Path, contract: Contract, retention_days: int, now: datetime) -> Compaction:
    written: list[Path] = []
    rows = bad = 0
    for path in sorted(directory.glob(SEGMENT_GLOB)):
        stamp = segment_time(path.name)
        if path.suffix != ".jsonl" or stamp is None or stamp > now - ROTATION_GRACE:
            continue
        target = path.with_suffix(".parquet")
        if not target.exists():
            corrupt: list[bytes] = []
            rows += _write_parquet(path, target, contract, corrupt)
            if corrupt:
                (directory / REJECTED).mkdir(exist_ok=True)
                (directory / REJECTED / path.name).write_bytes(b"".join(corrupt))
            bad += len(corrupt)
            written.append(target)
        path.unlink()
    removed = []
    for path in sorted(directory.glob(SEGMENT_GLOB)):
        stamp = segment_time(path.name)
        if path.suffix == ".parquet" and stamp and stamp < now - timedelta(days=retention_days):
            path.unlink()
            removed.append(path)
    return Compaction(written, removed, rows, bad)


def _write_parquet(source: Path, target: Path, contract: Contract, corrupt: list[bytes]) -> int:
    """Write to a temporary name and rename: a reader never sees half a Parquet file."""
    partial = target.with_name(f".{target.name}.partial")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for frame in _jsonl_frames(source, contract, light=False, corrupt=corrupt):
            table = _arrow(frame)
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema), row_group_size=CHUNK_ROWS)
            rows += len(frame)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # nothing but corrupt lines: an empty segment with the full schema
        empty = _flatten([], contract, light=False)
        pq.write_table(_arrow(empty), partial)
    partial.replace(target)
    return rows


def _arrow(frame: pd.DataFrame) -> pa.Table:
    # The time column goes as UTC nanoseconds: pyarrow's pandas conversion reads
    # `Series.values`, which pandas 3.1 deprecates for time-zone-aware columns.
    columns = {name: frame[name] for name in frame.columns}
    stamps = frame["timestamp"].dt.tz_convert(None).to_numpy()
    columns["timestamp"] = pa.array(stamps, pa.timestamp("ns", tz="UTC"))
    return pa.table(columns)
