"""Benchmark this API against `mlflow models serve` on the same exported model.

Both servers run on loopback with the same number of workers and get the same load (wrk when
installed, else a small Python load generator): single records and 1,000-record batches at
concurrency 1, 8 and 64, a few seconds a cell. Also measured: cold start to the first
successful prediction, resident memory, and the in-process predict floor for one record.

What each server is sent (the least work for each):
- this API: the raw record(s) as the contract describes them; it validates and encodes them.
- mlflow:   the ENCODED feature matrix as `dataframe_split` columns (mlflow's sklearn pyfunc
            takes a DataFrame and knows nothing of the contract), so mlflow skips validation
            and encoding entirely: the comparison favours mlflow.

Usage: python bench/bench.py [--model-dir models/champion] [--seconds 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from {{ cookiecutter.package_name }}.serving.contract_models import example_record
from {{ cookiecutter.package_name }}.serving.model_store import LoadedModel, load_model_dir

CONCURRENCY = (1, 8, 64)
BATCH_ROWS = 1_000
SERVER_ENV = {
    "OMP_NUM_THREADS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "SERVING_CONFIG": "none",
    "PREDICTION_LOG_DIR": "",  # measure serving, not the disk; the log is off the request path
    "LOG_LEVEL": "WARNING",  # likewise for the per-request access log line
}


@dataclass(frozen=True)
class Cell:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # the prediction URL
    single: bytes
    batch: bytes


class Server:
    def __init__(self, command: list[str], env: dict[str, str], probe: Target) -> None:
        # A file, not a pipe: an unread pipe fills up and stalls a chatty server (mlflow warns
        # on every request).
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command,
            env={**os.environ, **SERVER_ENV, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.cold_start_s = self._first_prediction(probe)

    def _first_prediction(self, probe: Target, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read()[-2000:]!r}")
            if _post(probe.url, probe.single) == 200:
                return time.perf_counter() - self.started
            time.sleep(0.02)
        raise RuntimeError(f"no successful prediction from {probe.url} in {timeout}s")

    def rss_mb(self) -> tuple[float, float]:
        """Resident memory of the whole process tree, and of its largest process (a worker)."""
        sizes = [_rss_kb(pid) / 1024 for pid in _process_tree(self.process.pid)]
        return sum(sizes), max(sizes)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models/champion"))
    )
    parser.add_argument("--seconds", type=int, default=3, help="duration of each cell")
    parser.add_argument("--workers", type=int, default=1, help="workers for both servers")
    args = parser.parse_args()
    if not (args.model_dir / "metadata.json").is_file():
        print(f"error: no exported model in {args.model_dir}; run `make export-model` first")
        return 1
    model = load_model_dir(args.model_dir)
    record = example_record(model.contract)
    rows = _batch_rows(model, record, BATCH_ROWS)
    floor_ms = _in_process_floor_ms(model, record)
    bin_dir = str(Path(sys.executable).parent)
    path_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    load = "wrk" if shutil.which("wrk") else "python"
    print(f"model: {args.model_dir} ({model.name} v{model.version}); workers: {args.workers}; ")
    print(f"load generator: {load}; {args.seconds:g} s a cell; {os.cpu_count()} cores")
    print(f"in-process floor, one record: predict {floor_ms[0]:.3f} ms, ", end="")
    print(f"encode + predict {floor_ms[1]:.3f} ms, ", end="")
    print(f"one-record path (predict_row) {floor_ms[2]:.3f} ms")
    print(f"scorer: {'compiled (scorer.json)' if model.scorer else 'skops fallback'}\n")

    ours_port, mlflow_port = _free_port(), _free_port()
    ours = Target(
        "this API",
        f"http://127.0.0.1:{ours_port}/predict",
        json.dumps(record).encode(),
        json.dumps({"columns": {k: [r[k] for r in rows] for k in record}}).encode(),
    )
    encoded_single = model.contract.encode({k: [v] for k, v in record.items()})
    encoded_batch = model.contract.encode({k: [r[k] for r in rows] for k in record})
    theirs = Target(
        "mlflow serve",
        f"http://127.0.0.1:{mlflow_port}/invocations",
        _dataframe_split(model, encoded_single),
        _dataframe_split(model, encoded_batch),
    )
    results: dict[str, dict[str, Any]] = {}
    for target, command in (
        (
            ours,
            [
                *(sys.executable, "-m", "uvicorn", "--factory"),
                "{{ cookiecutter.package_name }}.serving.app:create_app",
                *("--host", "127.0.0.1", "--port", str(ours_port)),
                *("--workers", str(args.workers), "--no-access-log"),
            ],
        ),
        (
            theirs,
            [
                *(sys.executable, "-m", "mlflow", "models", "serve"),
                *("-m", str(args.model_dir / "model"), "--env-manager", "local"),
                *("-h", "127.0.0.1", "-p", str(mlflow_port), "-w", str(args.workers)),
            ],
        ),
    ):
        env = {**path_env, "MODEL_DIR": str(args.model_dir)}
        server = Server(command, env, target)
        try:
            cells = {
                (kind, c): _drive(load, target.url, body, c, args.seconds)
                for kind, body in (("1 record", target.single), ("1,000 rows", target.batch))
                for c in CONCURRENCY
            }
            rss, largest = server.rss_mb()
        finally:
            server.stop()
        results[target.name] = {
            "cells": cells,
            "cold_start_s": server.cold_start_s,
            "rss_mb": rss,
            "worker_rss_mb": largest,
        }
    # The floor the service could reach: its fastest in-process way to score this record.
    _report(results, min(floor_ms[1], floor_ms[2]), args.workers)
    return 0


def _report(results: dict[str, dict[str, Any]], floor_ms: float, workers: int) -> None:
    ours, theirs = results["this API"], results["mlflow serve"]
    print(
        "| load | c | this API req/s | p50 ms | p99 ms | mlflow req/s | p50 ms | p99 ms "
        "| req/s ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key, cell in ours["cells"].items():
        other = theirs["cells"][key]
        ratio = cell.requests_per_s / other.requests_per_s if other.requests_per_s else float("inf")
        errors = f" ({cell.errors}/{other.errors} errors)" if cell.errors or other.errors else ""
        print(
            f"| {key[0]} | {key[1]} | {cell.requests_per_s:,.0f} | {cell.p50_ms:.2f} | "
            f"{cell.p99_ms:.2f} | {other.requests_per_s:,.0f} | {other.p50_ms:.2f} | "
            f"{other.p99_ms:.2f} | {ratio:.1f}x{errors} |"
        )
    print()
    for name, result in results.items():
        print(
            f"{name}: cold start to first prediction {result['cold_start_s']:.2f} s; "
            f"RSS {result['rss_mb']:.0f} MB in all for {workers} worker(s), "
            f"largest process {result['worker_rss_mb']:.0f} MB"
        )
    single_c8 = ours["cells"][("1 record", 8)].requests_per_s / max(
        theirs["cells"][("1 record", 8)].requests_per_s, 1e-9
    )
    batch_c8 = ours["cells"][("1,000 rows", 8)].requests_per_s / max(
        theirs["cells"][("1,000 rows", 8)].requests_per_s, 1e-9
    )
    p50_gap = ours["cells"][("1 record", 1)].p50_ms - floor_ms
    print("\ntargets (2 cores):")
    print(f"  1 record c=8 >= 20x mlflow:        {single_c8:.1f}x  {_ok(single_c8 >= 20)}")
    print(f"  p50 c=1 within 0.5 ms of floor:    +{p50_gap:.2f} ms  {_ok(p50_gap <= 0.5)}")
    print(f"  1,000 rows c=8 >= 3x mlflow:       {batch_c8:.1f}x  {_ok(batch_c8 >= 3)}")
    cold = ours["cold_start_s"]
    print(f"  cold start <= 1.5 s:               {cold:.2f} s  {_ok(cold <= 1.5)}")
    per_worker = ours["worker_rss_mb"]
    print(f"  <= 300 MB a worker:                {per_worker:.0f} MB  {_ok(per_worker <= 300)}")


def _ok(passed: bool) -> str:
    return "met" if passed else "MISSED"


def _batch_rows(model: LoadedModel, record: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """`count` valid records: the example record with its first numeric feature varied."""
    rng = np.random.default_rng(0)
    numeric = [c for c in model.contract.features if c.type in ("numeric", "integer")]
    rows = [dict(record) for _ in range(count)]
    if numeric:
        column = numeric[0]
        low = column.min if column.min is not None else 0.0
        high = column.max if column.max is not None else low + 1000.0
        for row, value in zip(rows, rng.uniform(low, high, count), strict=True):
            row[column.name] = int(value) if column.type == "integer" else float(value)
    return rows


def _in_process_floor_ms(model: LoadedModel, record: dict[str, Any]) -> tuple[float, float, float]:
    columns = {k: [v] for k, v in record.items()}
    matrix = model.contract.encode(columns)
    for _ in range(200):
        model.predict(matrix)
    predict = _median_ms(lambda: model.predict(matrix), 2_000)
    both = _median_ms(lambda: model.predict(model.contract.encode(columns)), 2_000)
    row = matrix[0].tolist()
    one = _median_ms(lambda: model.predict_row(row), 2_000)
    return predict, both, one


def _median_ms(call: Any, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def _dataframe_split(model: LoadedModel, matrix: np.ndarray) -> bytes:
    columns = model.contract.feature_names
    # JSON has no NaN: missing values go as null, which mlflow turns back into NaN.
    data = [[None if np.isnan(v) else float(v) for v in row] for row in matrix]
    return json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()


def _drive(load: str, url: str, body: bytes, concurrency: int, seconds: int) -> Cell:
    if load == "wrk":
        return _wrk(url, body, concurrency, seconds)
    return _python_load(url, body, concurrency, seconds)


def _wrk(url: str, body: bytes, concurrency: int, seconds: int) -> Cell:
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
        )
        threads = min(concurrency, 2)
        output = subprocess.run(  # noqa: S603 - fixed arguments
            [
                *("wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency"),
                *("--timeout", "30s", "-s", str(script), url),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|timeout) (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write) (\d+)", output))
    return Cell(rps, _wrk_percentile(output, "50%"), _wrk_percentile(output, "99%"), errors)


def _wrk_percentile(output: str, label: str) -> float:
    match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def _python_load(url: str, body: bytes, concurrency: int, seconds: float) -> Cell:
    """Fallback load generator: keep-alive connections in threads (GIL-bound, so pessimistic)."""
    host, port, path = re.match(r"http://([^:/]+):(\d+)(/.*)", url).groups()  # type: ignore[union-attr]
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                errors[0] += 1
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    return Cell(
        len(ordered) / seconds,
        ordered[len(ordered) // 2] * 1000,
        ordered[int(len(ordered) * 0.99)] * 1000,
        errors[0],
    )


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(  # noqa: S310 - loopback http URL built here
        url, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except OSError:
        return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree.extend(children)
        frontier = children
    return tree


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


if __name__ == "__main__":
    sys.exit(main())
