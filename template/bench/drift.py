"""`make bench-drift`: the monitor's drift checks against evidently, and its memory at scale.

1. Speed, side by side: a reference and a current table of 1M rows x 20 features (12
   numeric, 8 categorical; drift planted in some, strong, subtle or none), compared by
   `monitoring/drift.py` and by evidently 0.7.23's DataDriftPreset. Both decide with
   evidently's tests for tables this large: normalised Wasserstein distance for numbers,
   Jensen-Shannon distance for categories, both at 0.1. evidently runs in its own environment
   (bench/evidently_drift.py through `uv run --no-project`: it does not import with the
   project's pandas and weighs about 700 MB), on the same tables written to Parquet; each
   side is timed from tables in memory to verdicts. Printed: both times, the ratio (goal:
   10x or more) and every feature's verdict and statistic on each side.
2. The log's format: 1M predicted rows logged as the service logs them (JSONL, 1,000-row
   requests), compacted to Parquet as `compact-log` does: bytes on disk and the time to
   read them back through `read_log` on each.
3. Memory: a 10M-row prediction log (about 1 GB of JSONL as written) compacted, then read
   by the monitor's path (`read_log` chunks into the drift accumulator), each step in a
   fresh process: time and peak resident memory (goal: 1 GB or less).

Usage: python bench/drift.py [--rows 1000000] [--log-rows 10000000] [--skip-evidently]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from {{ cookiecutter.package_name }}.config import CategoricalTest, DriftParams, NumericTest
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.monitoring.drift import compare
from {{ cookiecutter.package_name }}.monitoring.log_store import compact, read_log
from {{ cookiecutter.package_name }}.schema import Column, ColumnType, Contract
from {{ cookiecutter.package_name }}.serving.prediction_log import segment_name

EVIDENTLY = ("evidently==0.7.23", "pandas==3.0.6")
# evidently's own choice above 1,000 rows, and its thresholds.
AS_EVIDENTLY = DriftParams(
    numeric_test=NumericTest.WASSERSTEIN,
    categorical_test=CategoricalTest.JENSEN_SHANNON,
    wasserstein=0.1,
    jensen_shannon=0.1,
)
CHUNK_ROWS = 65_536  # the current table reaches our side in chunks, as the log does
REQUEST_ROWS = 1_000
SEGMENT_BYTES = 50 * 1024 * 1024  # the service's default rotation size
SPEED_GOAL, MEMORY_GOAL_MB = 10.0, 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of each table")
    parser.add_argument("--log-rows", type=int, default=10_000_000, help="rows of the big log")
    parser.add_argument("--skip-evidently", action="store_true", help="our side only")
    parser.add_argument(
        "--parts", default="speed,format,memory", help="which of speed, format, memory to run"
    )
    parser.add_argument("--step", nargs=2, help=argparse.SUPPRESS)  # a measured child step
    args = parser.parse_args()
    if args.step:
        return _child(*args.step)
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as scratch:
        folder = Path(scratch)
        parts = args.parts.split(",")
        if "speed" in parts and not _speed(folder / "tables", args.rows, args.skip_evidently):
            return 1
        if "format" in parts:
            _format(folder / "format", min(args.rows, args.log_rows))
        if "memory" in parts:
            _memory(folder / "big", args.log_rows)
    return 0


# 1. Speed ---------------------------------------------------------------------------------


# name: (reference draw, current draw, the change planted); a draw is a numpy Generator
# method and its parameters.
NUMERIC: dict[str, tuple[tuple[Any, ...], tuple[Any, ...], str]] = {
    "income": (("lognormal", 10.7, 0.5), ("lognormal", 10.7, 0.5), "none (5% missing)"),
    "age": (("integers", 18, 80), ("integers", 18, 80), "none"),
    "score_a": (("normal", 0, 1), ("normal", 0.5, 1), "mean +0.5 sd"),
    "score_b": (("normal", 0, 1), ("normal", 0, 1.6), "sd x1.6"),
    "score_c": (("normal", 0, 1), ("normal", 0.03, 1), "mean +0.03 sd (subtle)"),
    "amount": (("exponential", 5_000), ("exponential", 5_000), "none (5% missing)"),
    "tenure": (("integers", 0, 40), ("integers", 4, 44), "+4 years"),
    "ratio": (("uniform", 0, 1), ("uniform", 0, 1), "none"),
    "balance": (("gamma", 2, 1_000), ("gamma", 2, 1_300), "scale x1.3"),
    "rate": (("beta", 2, 5), ("beta", 2, 5), "none"),
    "visits": (("poisson", 3), ("poisson", 3.1), "mean +0.1 (subtle)"),
    "spread": (("laplace", 0, 1), ("laplace", 0, 1), "none"),
}
# name: (categories, reference shares, current shares, the change planted)
CATEGORICAL: dict[str, tuple[list[str], list[float], list[float], str]] = {
    "region": (list("abcde"), [0.4, 0.3, 0.15, 0.1, 0.05], [0.1, 0.2, 0.3, 0.2, 0.2], "reshuffled"),
    "channel": (["web", "app", "branch"], [0.5, 0.3, 0.2], [0.52, 0.29, 0.19], "+2 points"),
    "product": (list("abcde"), [0.2] * 5, [0.2] * 5, "none"),
    "segment": (["retail", "sme", "corp"], [0.7, 0.2, 0.1], [0.4, 0.35, 0.25], "-30 points"),
    "owns_home": (["false", "true"], [0.6, 0.4], [0.6, 0.4], "none"),
    "employment": (
        list("abcde"),
        [0.55, 0.15, 0.12, 0.08, 0.1],
        [0.55, 0.15, 0.12, 0.08, 0.1],
        "none",
    ),
    "grade": (list("ABCD"), [0.25] * 4, [0.22, 0.26, 0.26, 0.26], "-3 points (subtle)"),
    "language": (["en", "fr", "de"], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4], "de x4"),
}
MISSING = ("income", "amount")  # 5% missing on both sides


def _tables(rows: int) -> tuple[pd.DataFrame, pd.DataFrame, list[Column]]:
    rng = np.random.default_rng(0)
    reference: dict[str, np.ndarray] = {}
    current: dict[str, np.ndarray] = {}
    for name, (before, after, _) in NUMERIC.items():
        for table, (method, *parameters) in ((reference, before), (current, after)):
            values = getattr(rng, method)(*parameters, size=rows).astype(np.float64)
            if name in MISSING:
                values[rng.random(rows) < 0.05] = np.nan
            table[name] = values
    for name, (categories, before_shares, after_shares, _) in CATEGORICAL.items():
        reference[name] = rng.choice(categories, rows, p=before_shares)
        current[name] = rng.choice(categories, rows, p=after_shares)
    columns = [Column(name=name, type=ColumnType.NUMERIC) for name in NUMERIC]
    columns += [
        Column(name=name, type=ColumnType.CATEGORICAL, categories=tuple(spec[0]))
        for name, spec in CATEGORICAL.items()
    ]
    return pd.DataFrame(reference), pd.DataFrame(current), columns


def _planted(name: str) -> str:
    return NUMERIC[name][2] if name in NUMERIC else CATEGORICAL[name][3]


def _speed(folder: Path, rows: int, skip_evidently: bool) -> bool:
    folder.mkdir(parents=True)
    reference, current, columns = _tables(rows)
    print(f"1. drift checks: {rows:,} reference rows vs {rows:,} current, {len(columns)} features")
    started = time.perf_counter()
    chunks = (current.iloc[i : i + CHUNK_ROWS] for i in range(0, len(current), CHUNK_ROWS))
    ours = {result.name: result for result in compare(reference, chunks, columns, AS_EVIDENTLY)}
    our_seconds = time.perf_counter() - started
    theirs: dict[str, Any] | None = None
    if not skip_evidently:
        theirs = _evidently(folder, reference, current, columns)
        if theirs is None:
            return False
    print()
    _row("feature", "kind", "planted change", "test", "ours", "verdict", "evidently", "verdict")
    _row(*["---"] * 8)
    agree = 0
    for column in columns:
        result = ours[column.name]
        test = result.decided_by
        mine = result.checks[test]
        other: dict[str, Any] = {"value": None, "drifted": None}
        if theirs is not None:
            other = theirs["columns"][column.name]
        agree += other["drifted"] == mine
        _row(
            *(column.name, result.kind, _planted(column.name), test),
            *(_statistic(result.statistics[test]), _verdict(mine)),
            *(_statistic(other["value"]), _verdict(other["drifted"])),
        )
    print(f"\nours: {our_seconds:.2f} s")
    if theirs is not None:
        ratio = theirs["seconds"] / our_seconds
        print(f"evidently {EVIDENTLY[0].split('==')[1]}: {theirs['seconds']:.2f} s")
        faster = f"{ratio:.1f}x"
        print(f"  >= {SPEED_GOAL:.0f}x faster than evidently: {faster}  {_ok(ratio >= SPEED_GOAL)}")
        same = f"{agree}/{len(columns)}"
        print(f"  same verdict on every feature:  {same}  {_ok(agree == len(columns))}")
    return True


def _evidently(
    folder: Path, reference: pd.DataFrame, current: pd.DataFrame, columns: list[Column]
) -> dict[str, Any] | None:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None or shutil.which(uv) is None:
        print("error: evidently runs in its own environment made by uv, and no uv was found")
        return None
    reference.to_parquet(folder / "reference.parquet")
    current.to_parquet(folder / "current.parquet")
    kinds = {
        "numeric": [c.name for c in columns if c.type is ColumnType.NUMERIC],
        "categorical": [c.name for c in columns if c.type is not ColumnType.NUMERIC],
    }
    (folder / "columns.json").write_text(json.dumps(kinds))
    with_packages = [arg for package in EVIDENTLY for arg in ("--with", package)]
    script = Path(__file__).with_name("evidently_drift.py")
    print(f"   evidently: uv run --no-project {' '.join(with_packages)} (first run installs it)")
    done = subprocess.run(  # noqa: S603 - our uv, our script
        [uv, "run", "--quiet", "--no-project", *with_packages, "python", str(script), str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"error: evidently's side failed:\n{done.stderr[-3000:]}")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _verdict(drifted: bool | None) -> str:
    return "-" if drifted is None else "drift" if drifted else "ok"


def _statistic(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _row(*cells: str) -> None:
    print(f"| {' | '.join(cells)} |")


def _ok(passed: bool) -> str:
    return "met" if passed else "MISSED"


# 2 and 3. The log -------------------------------------------------------------------------


def _write_log(folder: Path, contract: Contract, rows: int) -> int:
    """`rows` predicted rows as the service logs them: 1,000-row requests, one JSON line each,
    in segments rotated at the service's size. Returns the bytes written."""
    folder.mkdir(parents=True)
    classes = list(contract.target.classes or [])
    rng = np.random.default_rng(1)
    variants = []  # a few distinct requests, re-sent with their own ids and times
    for seed in range(20):
        table = make_sample(contract, REQUEST_ROWS, seed=seed)
        names = [
            *([contract.id] if contract.id else []),
            *contract.feature_names,
            *(c.name for c in contract.sensitive),
        ]
        inputs = {n: [None if v != v else v for v in table[n].tolist()] for n in names}
        if classes:
            probabilities = rng.dirichlet(np.ones(len(classes)), REQUEST_ROWS)
            outputs = {
                "predictions": [classes[i] for i in probabilities.argmax(axis=1)],
                "classes": classes,
                "probabilities": probabilities,
            }
        else:
            outputs = {
                "predictions": rng.random(REQUEST_ROWS).tolist(),
                "classes": None,
                "probabilities": None,
            }
        variants.append((inputs, outputs))
    start = datetime.now(UTC) - timedelta(days=1)
    segment: list[bytes] = []
    size = total = 0
    requests = max(rows // REQUEST_ROWS, 1)
    for number in range(requests):
        inputs, outputs = variants[number % len(variants)]
        when = start + timedelta(seconds=number)
        line = orjson.dumps(
            {
                "request_id": f"{number:032x}",
                "timestamp": when.isoformat(),
                "model_name": "bench",
                "model_version": "1",
                "latency_ms": 9.5,
                "rows": REQUEST_ROWS,
                "inputs": inputs,
                "outputs": outputs,
                "shadow": None,
            },
            option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE,
        )
        segment.append(line)
        size += len(line)
        if size >= SEGMENT_BYTES or number == requests - 1:
            (folder / segment_name(when, os.getpid())).write_bytes(b"".join(segment))
            total += size
            segment, size = [], 0
    return total


def _bytes(folder: Path, suffix: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(f"*{suffix}"))


def _format(folder: Path, rows: int) -> None:
    contract = Contract.load("schema.yaml")
    jsonl = _write_log(folder, contract, rows)
    scan_jsonl = _measured("read", folder)
    compacted = _measured("compact", folder)
    scan_parquet = _measured("read", folder)
    parquet = _bytes(folder, ".parquet")
    print(f"\n2. the log's format: {rows:,} predicted rows in {REQUEST_ROWS:,}-row requests")
    _row("format", "bytes on disk", "read back by read_log", "peak memory")
    _row(*["---"] * 4)
    for name, size, scan in (
        ("JSONL, as the service writes it", jsonl, scan_jsonl),
        ("Parquet (zstd), after compact-log", parquet, scan_parquet),
    ):
        _row(name, f"{size / 1e6:,.1f} MB", f"{scan['seconds']:.1f} s", f"{scan['peak_mb']:.0f} MB")
    smaller = jsonl / max(parquet, 1)
    faster = scan_jsonl["seconds"] / max(scan_parquet["seconds"], 1e-9)
    print(f"Parquet: {smaller:.0f}x smaller, read {faster:.0f}x faster")
    print(f"compaction: {compacted['seconds']:.1f} s, peak {compacted['peak_mb']:.0f} MB")


def _memory(folder: Path, rows: int) -> None:
    contract = Contract.load("schema.yaml")
    print(f"\n3. the monitor's path over a {rows:,}-row prediction log (a fresh process a step)")
    jsonl = _write_log(folder, contract, rows)
    compacted = _measured("compact", folder)
    monitored = _measured("monitor", folder)
    parquet = _bytes(folder, ".parquet")
    _row("step", "time", "peak memory")
    _row(*["---"] * 3)
    for name, step in (
        (f"compact-log: {jsonl / 1e9:.2f} GB JSONL -> {parquet / 1e6:,.0f} MB Parquet", compacted),
        (f"read_log + drift checks, {monitored['rows']:,} rows", monitored),
    ):
        _row(name, f"{step['seconds']:.1f} s", f"{step['peak_mb']:.0f} MB")
    peak = max(compacted["peak_mb"], monitored["peak_mb"])
    print(f"  peak memory <= {MEMORY_GOAL_MB} MB: {peak:.0f} MB  {_ok(peak <= MEMORY_GOAL_MB)}")


def _measured(step: str, folder: Path) -> dict[str, Any]:
    """One step in a fresh process, so the peak memory is that step's own."""
    done = subprocess.run(  # noqa: S603 - this script
        [sys.executable, __file__, "--step", step, str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _child(step: str, folder_name: str) -> int:
    folder = Path(folder_name)
    contract = Contract.load("schema.yaml")
    started = time.perf_counter()
    rows = 0
    if step == "compact":
        rows = compact(folder, contract, retention_days=3650).rows
    else:
        window = read_log(folder, contract)
        if step == "monitor":
            reference = make_sample(contract, 8_000, seed=0)
            compare(reference, window.chunks(), contract.features, DriftParams())
        else:
            for _ in window.chunks():  # the read alone
                pass
        rows = window.rows
    seconds = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child started by
    # a large parent would report the parent's size.
    status = Path("/proc/self/status").read_text()
    peak_mb = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
