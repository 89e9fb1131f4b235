"""The prediction log read back: JSONL and Parquet alike, windows, `--last`, bad lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from serving.faults import finish, starve

from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.monitoring.log_store import (
    REJECTED,
    compact,
    find_request,
    read_log,
    segments,
)
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME, segment_name

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def record(contract: Contract, number: int, rows: int, version: str = "1") -> dict[str, Any]:
    """A record as the service logs it, rows from the project's synthetic data."""
    table = make_sample(contract, rows, seed=number)
    names = [*([contract.id] if contract.id else []), *contract.feature_names]
    names += [c.name for c in contract.sensitive]
    inputs = {n: [None if v != v else v for v in table[n].tolist()] for n in names}
    classes = list(contract.target.classes or [])
    rng = np.random.default_rng(number)
    if classes:
        probabilities = rng.dirichlet(np.ones(len(classes)), size=rows)
        predictions = [classes[i] for i in probabilities.argmax(axis=1)]
    else:
        probabilities, predictions = None, rng.random(rows).tolist()
    return {
        "request_id": f"r{number}",
        "timestamp": (T0 + timedelta(minutes=number)).isoformat(),
        "model_name": "{{ cookiecutter.project_slug }}",
        "model_version": version,
        "lineage": {"run_id": f"run-{version}", "git_commit": "c" * 40, "data_hash": "d" * 32},
        "role": "stable",
        "latency_ms": 1.5,
        "rows": rows,
        "inputs": inputs,
        "outputs": {
            "predictions": predictions,
            "classes": classes or None,
            "probabilities": probabilities,
        },
        "shadow": None,
    }


def write_segment(directory: Path, name: str, records: list[dict[str, Any]]) -> Path:
    path = directory / name
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    path.write_bytes(b"".join(orjson.dumps(r, option=option) for r in records))
    return path


def rotated(minutes: int) -> str:
    return segment_name(T0 + timedelta(minutes=minutes), 7)


def frame(directory: Path, contract: Contract, **window: Any) -> pd.DataFrame:
    return pd.concat(list(read_log(directory, contract, **window).chunks()), ignore_index=True)


def test_rows_are_flat_and_compaction_round_trips(tmp_path: Path, contract: Contract) -> None:
    records = [record(contract, i, rows) for i, rows in enumerate([1, 3, 5])]
    write_segment(tmp_path, rotated(10), records)
    from_jsonl = frame(tmp_path, contract)

    done = compact(tmp_path, contract, retention_days=10_000, now=T0 + timedelta(hours=1))
    assert [p.suffix for p in segments(tmp_path)] == [".parquet"]
    assert done.rows == 9
    pd.testing.assert_frame_equal(frame(tmp_path, contract), from_jsonl)

    assert from_jsonl["request_id"].tolist() == ["r0"] + ["r1"] * 3 + ["r2"] * 5
    # What the line says of the model and its lineage survives compaction too.
    assert set(from_jsonl["run_id"]) == {"run-1"}
    assert set(from_jsonl["role"]) == {"stable"}
    assert set(from_jsonl["data_hash"]) == {"d" * 32}
    assert from_jsonl["row"].tolist() == [0, 0, 1, 2, 0, 1, 2, 3, 4]
    assert str(from_jsonl["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert from_jsonl["timestamp"].iloc[-1] == T0 + timedelta(minutes=2)
    for column in contract.features:
        sent = list(np.concatenate([r["inputs"][column.name] for r in records]))
        logged = from_jsonl[column.name]
        assert logged.isna().tolist() == [v is None for v in sent], column.name
    last = records[-1]["outputs"]
    if contract.target.classes:
        positive = np.asarray(last["probabilities"])[:, -1]
        top = np.asarray(last["probabilities"]).max(axis=1)
        expected = positive if contract.target.kind == "binary" else top
        assert np.allclose(from_jsonl["score"].tail(5), expected)
        assert [f"proba_{c}" for c in contract.target.classes] == [
            c for c in from_jsonl.columns if c.startswith("proba_")
        ]
    else:
        assert np.allclose(from_jsonl["score"].tail(5), last["predictions"])


def test_a_segment_compacted_while_a_window_is_open_is_read_from_parquet(
    tmp_path: Path, contract: Contract
) -> None:
    write_segment(tmp_path, rotated(10), [record(contract, i, 2) for i in range(3)])
    window = read_log(tmp_path, contract)
    before = pd.concat(list(window.chunks()))
    compact(tmp_path, contract, retention_days=10_000, now=T0 + timedelta(hours=1))
    pd.testing.assert_frame_equal(pd.concat(list(window.chunks())), before)


def test_corrupt_lines_are_skipped_counted_and_kept(tmp_path: Path, contract: Contract) -> None:
    path = write_segment(tmp_path, rotated(10), [record(contract, i, 2) for i in range(3)])
    good = path.read_bytes().splitlines(keepends=True)
    truncated = good[1][:40] + b"\n"
    path.write_bytes(good[0] + b"not json\n" + truncated + b"\n" + good[2])  # blank: not bad

    window = read_log(tmp_path, contract)
    assert (window.corrupt_lines, window.requests, window.rows) == (2, 2, 4)

    done = compact(tmp_path, contract, retention_days=10_000, now=T0 + timedelta(hours=1))
    assert done.corrupt_lines == 2
    assert (tmp_path / REJECTED / path.name).read_bytes() == b"not json\n" + truncated


def test_the_active_files_unfinished_last_line_is_not_corrupt(
    tmp_path: Path, contract: Contract
) -> None:
    path = write_segment(tmp_path, LOG_FILE_NAME, [record(contract, 0, 2)])
    with path.open("ab") as active:
        active.write(b'{"request_id": "r1", "times')  # the writer is mid-line
    window = read_log(tmp_path, contract)
    assert (window.corrupt_lines, window.requests) == (0, 1)


@pytest.fixture
def three_kinds(tmp_path: Path, contract: Contract) -> Path:
    """Requests r0..r5 over a compacted segment, a rotated one and the active file."""
    write_segment(tmp_path, rotated(2), [record(contract, i, i + 1, "1") for i in (0, 1)])
    compact(tmp_path, contract, retention_days=10_000, now=T0 + timedelta(hours=1))
    write_segment(tmp_path, rotated(4), [record(contract, i, i + 1, "2") for i in (2, 3)])
    write_segment(tmp_path, LOG_FILE_NAME, [record(contract, i, i + 1, "2") for i in (4, 5)])
    return tmp_path


def test_the_whole_log_across_segment_kinds(three_kinds: Path, contract: Contract) -> None:
    window = read_log(three_kinds, contract)
    assert (window.requests, window.rows) == (6, 21)
    assert window.versions == {"1": 3, "2": 18}
    rows = frame(three_kinds, contract)
    assert rows["request_id"].unique().tolist() == [f"r{i}" for i in range(6)]


def test_last_is_the_newest_requests(three_kinds: Path, contract: Contract) -> None:
    window = read_log(three_kinds, contract, last=3)
    assert (window.requests, window.rows, window.versions) == (3, 15, {"2": 15})
    rows = frame(three_kinds, contract, last=3)
    assert rows["request_id"].unique().tolist() == ["r3", "r4", "r5"]
    assert len(rows) == 15


def test_since_until_window(three_kinds: Path, contract: Contract) -> None:
    since, until = T0 + timedelta(minutes=1), T0 + timedelta(minutes=4)
    rows = frame(three_kinds, contract, since=since, until=until)
    assert rows["request_id"].unique().tolist() == ["r1", "r2", "r3"]
    window = read_log(three_kinds, contract, since=since, until=until, last=2)
    assert (window.requests, window.rows) == (2, 7)
    empty = read_log(three_kinds, contract, since=T0 + timedelta(days=1))
    assert (empty.requests, list(empty.chunks())) == (0, [])


def test_retention_deletes_only_old_compacted_data(tmp_path: Path, contract: Contract) -> None:
    now = T0 + timedelta(days=30)
    write_segment(tmp_path, rotated(0), [record(contract, 0, 1)])
    compact(tmp_path, contract, retention_days=10_000, now=T0 + timedelta(hours=1))
    old = segments(tmp_path)[0]
    recent = write_segment(tmp_path, segment_name(now - timedelta(days=1), 7), [])
    rotating = write_segment(tmp_path, segment_name(now, 7), [record(contract, 1, 1)])
    active = write_segment(tmp_path, LOG_FILE_NAME, [record(contract, 2, 1)])

    done = compact(tmp_path, contract, retention_days=7, now=now)
    assert done.removed == [old]
    # The recent rotated segment was compacted and kept; one rotated a moment ago is left
    # for the next run (another worker may still be finishing a write to it).
    assert segments(tmp_path) == [recent.with_suffix(".parquet"), rotating, active]


def test_times_without_a_zone_are_utc(three_kinds: Path, contract: Contract) -> None:
    naive = T0.replace(tzinfo=None) + timedelta(minutes=4)
    rows = frame(three_kinds, contract, since=naive)
    assert rows["request_id"].unique().tolist() == ["r4", "r5"]


def test_a_log_that_went_through_a_write_failure_reads_whole(
    tmp_path: Path, contract: Contract
) -> None:
    """What `monitor` (read_log), `compact-log` (compact) and `trace` (find_request) read of
    a log the service wrote through a write failure (serving/faults.py): nothing corrupt,
    every request that was written, nothing else."""
    parts = [[record(contract, 10 * part + i, 3) for i in range(4)] for part in range(3)]
    starved = finish(starve(tmp_path / "log", "process", parts), tmp_path / "log")
    written = [orjson.loads(line)["request_id"] for line in starved.lines()]
    assert 0 < len(written) < len(starved.answered)
    log = tmp_path / "log"
    window = read_log(log, contract)
    assert (window.corrupt_lines, window.requests) == (0, len(written))

    starved.log.rename(log / rotated(50))
    done = compact(log, contract, retention_days=10_000, now=T0 + timedelta(hours=2))
    assert (done.corrupt_lines, done.rows) == (0, 3 * len(written))
    missing = next(rid for rid in starved.answered if rid not in written)
    assert find_request(log, contract, missing).empty
    assert len(find_request(log, contract, starved.answered[-1])) == 3  # after the failure
