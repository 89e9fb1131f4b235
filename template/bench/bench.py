"""Benchmark this API against `mlflow models serve` and a bare FastAPI floor, side by side.

Three servers on loopback, same uvicorn settings and workers, same load (wrk when installed,
else a small Python load generator), a few seconds a cell, cells of the three interleaved so
the machine's noise hits them alike:
- this API, prediction log ON (as deployed): single records at concurrency 1, 8 and 64,
  1,000-row batches at 1 and 8 as columns, and at 8 as a list of 1,000 records (the body a
  client most often sends, which mlflow gets as its encoded matrix all the same);
- the floor (bench/floor.py): a bare `async def` FastAPI route taking the same
  contract-generated record and returning a constant; single records only;
- `mlflow models serve` on the same exported model.
Also measured: cold start to the first successful prediction, and resident memory a worker;
and the prediction log's cost: this API with the log on and off (a fourth server), requests of
1, 100 and 1,000 rows at concurrency 8, each pair run back to back twice in swapped order,
comparing throughput and the server's CPU time a request (the steadier figure on a busy
machine). And what each prediction log durability costs (`prediction_log_durability`: this
API runs the default; two more servers run the other levels): 1 record and 1,000 rows at
concurrency 8, the four back to back twice, in one order then the other.

What each server is sent (the least work for each):
- this API and the floor: the raw record(s) as the contract describes them;
- mlflow: the ENCODED feature matrix as `dataframe_split` columns (mlflow's sklearn pyfunc
  takes a DataFrame and knows nothing of the contract), so mlflow skips validation and
  encoding entirely: the comparison favours mlflow.
Rows come from the project's synthetic generator (`data.make_sample`).

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

from {{ cookiecutter.package_name }}.config import LogDurability, ServingParams
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.serving.contract_models import example_record
from {{ cookiecutter.package_name }}.serving.model_store import LoadedModel, load_model_dir

SINGLE_CONCURRENCY = (1, 8, 64)
BATCH_CONCURRENCY = (1, 8)
BATCH_ROWS = 1_000
SERVER_ENV = {
    "OMP_NUM_THREADS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "SERVING_CONFIG": "none",
    "LOG_LEVEL": "WARNING",  # no access log line a request; the prediction log stays on
}
# The metrics' files in memory, as the image keeps them (Dockerfile); else in the scratch.
_SHM = Path("/dev/shm")  # noqa: S108 (mkdtemp makes a private folder in it, no fixed name)
METRICS_MEMORY = str(_SHM) if _SHM.is_dir() else None
OURS, FLOOR, MLFLOW = "this API", "floor", "mlflow serve"
NO_LOG = "this API, log off"
LOG_COST_ROWS = (1, 100, 1_000)
LOG_COST_MAX = 0.20  # the log may cost at most this share of throughput
# The other durability levels beside this API's default (serving/prediction_log.py).
DEFAULT_LEVEL = ServingParams().prediction_log_durability.value
LEVELS = {
    f"this API, log {level.value}": level.value
    for level in LogDurability
    if level.value != DEFAULT_LEVEL
}
DURABILITY_ROWS = (1, BATCH_ROWS)
DURABILITY_MAX = 0.10  # `process` is the default if it costs at most this share of `queued`


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
    batch: bytes | None  # None: not measured on batches
    records: bytes | None = None  # the batch as a list of records; None: `batch` instead


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

    def cpu_seconds(self) -> float:
        """CPU time the server's processes have used so far (user + system)."""
        ticks = os.sysconf("SC_CLK_TCK")
        return sum(_cpu_ticks(pid) for pid in _process_tree(self.process.pid)) / ticks

    def worker_rss_mb(self) -> float:
        """Resident memory of the largest process of the tree (a worker)."""
        return max(_rss_kb(pid) / 1024 for pid in _process_tree(self.process.pid))

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
    parser.add_argument("--workers", type=int, default=1, help="workers for every server")
    args = parser.parse_args()
    if not (args.model_dir / "metadata.json").is_file():
        print(f"error: no exported model in {args.model_dir}; run `make export-model` first")
        return 1
    model = load_model_dir(args.model_dir)
    record = example_record(model.contract)
    batch = _batch_columns(model, BATCH_ROWS)
    load = "wrk" if shutil.which("wrk") else "python"
    print(f"model: {args.model_dir} ({model.name} v{model.version}); workers: {args.workers}")
    print(f"load generator: {load}; {args.seconds:g} s a cell; {os.cpu_count()} cores\n")

    ports = {name: _free_port() for name in (OURS, FLOOR, MLFLOW, NO_LOG, *LEVELS)}
    targets = {
        OURS: Target(
            OURS,
            f"http://127.0.0.1:{ports[OURS]}/predict",
            json.dumps(record).encode(),
            json.dumps({"columns": batch}).encode(),
            json.dumps(
                [dict(zip(batch, row, strict=True)) for row in zip(*batch.values(), strict=True)]
            ).encode(),
        ),
        FLOOR: Target(
            FLOOR, f"http://127.0.0.1:{ports[FLOOR]}/predict", json.dumps(record).encode(), None
        ),
        NO_LOG: Target(
            NO_LOG, f"http://127.0.0.1:{ports[NO_LOG]}/predict", json.dumps(record).encode(), None
        ),
        **{
            name: Target(
                name, f"http://127.0.0.1:{ports[name]}/predict", json.dumps(record).encode(), None
            )
            for name in LEVELS
        },
        MLFLOW: Target(
            MLFLOW,
            f"http://127.0.0.1:{ports[MLFLOW]}/invocations",
            _dataframe_split(model, model.contract.encode({k: [v] for k, v in record.items()})),
            _dataframe_split(model, model.contract.encode(batch)),
        ),
    }
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "--host", "127.0.0.1"]
    workers = ("--workers", str(args.workers), "--no-access-log")
    bench_dir = str(Path(__file__).resolve().parent)
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as scratch,
        tempfile.TemporaryDirectory(prefix="bench-metrics-", dir=METRICS_MEMORY) as metrics,
    ):
        (Path(metrics) / "metrics").mkdir()
        (Path(metrics) / "metrics-no-log").mkdir()
        for level in LEVELS.values():
            (Path(metrics) / f"metrics-{level}").mkdir()
        commands = {
            OURS: (
                [
                    *uvicorn,
                    "{{ cookiecutter.package_name }}.serving.app:create_app",
                    "--port",
                    str(ports[OURS]),
                    *workers,
                ],
                {
                    "PREDICTION_LOG_DIR": str(Path(scratch) / "predictions"),
                    "PROMETHEUS_MULTIPROC_DIR": str(Path(metrics) / "metrics"),
                },
            ),
            NO_LOG: (
                [
                    *uvicorn,
                    "{{ cookiecutter.package_name }}.serving.app:create_app",
                    "--port",
                    str(ports[NO_LOG]),
                    *workers,
                ],
                {
                    "PREDICTION_LOG_DIR": "",  # empty: off
                    "PROMETHEUS_MULTIPROC_DIR": str(Path(metrics) / "metrics-no-log"),
                },
            ),
            **{
                name: (
                    [
                        *uvicorn,
                        "{{ cookiecutter.package_name }}.serving.app:create_app",
                        "--port",
                        str(ports[name]),
                        *workers,
                    ],
                    {
                        "PREDICTION_LOG_DIR": str(Path(scratch) / f"predictions-{level}"),
                        "PREDICTION_LOG_DURABILITY": level,
                        "PROMETHEUS_MULTIPROC_DIR": str(Path(metrics) / f"metrics-{level}"),
                    },
                )
                for name, level in LEVELS.items()
            },
            FLOOR: (
                [*uvicorn, "floor:create_app", "--port", str(ports[FLOOR]), *workers],
                {"PYTHONPATH": bench_dir},
            ),
            MLFLOW: (
                [
                    *(sys.executable, "-m", "mlflow", "models", "serve"),
                    *("-m", str(args.model_dir / "model"), "--env-manager", "local"),
                    *("-h", "127.0.0.1", "-p", str(ports[MLFLOW]), "-w", str(args.workers)),
                ],
                # mlflow's local env manager runs its tools from the venv's bin.
                {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
            ),
        }
        servers: dict[str, Server] = {}
        try:
            for name, (command, env) in commands.items():
                servers[name] = Server(
                    command, {"MODEL_DIR": str(args.model_dir), **env}, targets[name]
                )
            cells = _measure(
                {name: t for name, t in targets.items() if name not in (NO_LOG, *LEVELS)},
                load,
                args.seconds,
            )
            log_cost = _log_cost(model, servers, targets, load, args.seconds)
            durability = _durability_cost(model, servers, targets, load, args.seconds)
            rss = {name: server.worker_rss_mb() for name, server in servers.items()}
        finally:
            for server in servers.values():
                server.stop()
    _report(cells, {name: s.cold_start_s for name, s in servers.items()}, rss, args.workers)
    _report_log_cost(log_cost)
    _report_durability(durability)
    return 0


@dataclass(frozen=True)
class LogCost:
    rows: int
    on: Cell
    off: Cell
    cpu_ms_on: float  # server CPU time a request
    cpu_ms_off: float


def _log_cost(
    model: LoadedModel,
    servers: dict[str, Server],
    targets: dict[str, Target],
    load: str,
    seconds: int,
) -> list[LogCost]:
    """This API with the log on and off, at concurrency 8, for each request size."""
    costs = []
    for rows in LOG_COST_ROWS:
        body = _body(model, targets, rows)
        runs: dict[str, list[tuple[Cell, float]]] = {OURS: [], NO_LOG: []}
        for order in ((OURS, NO_LOG), (NO_LOG, OURS)):  # swapped: drifting load hits both
            for name in order:
                runs[name].append(_cpu_cell(servers[name], targets[name], body, load, seconds))
        on, off = (_mean(runs[name]) for name in (OURS, NO_LOG))
        costs.append(LogCost(rows, on[0], off[0], on[1], off[1]))
    return costs


def _durability_cost(
    model: LoadedModel,
    servers: dict[str, Server],
    targets: dict[str, Target],
    load: str,
    seconds: int,
) -> dict[tuple[int, str], tuple[Cell, float]]:
    """Each durability level and the log off, c=8, for 1 record and 1,000 rows: the mean of
    two runs each (cell, server CPU ms a request), keyed by (rows, level)."""
    names = {**LEVELS, OURS: DEFAULT_LEVEL, NO_LOG: "log off"}
    order = sorted(names, key=lambda name: names[name])
    results = {}
    for rows in DURABILITY_ROWS:
        body = _body(model, targets, rows)
        runs: dict[str, list[tuple[Cell, float]]] = {name: [] for name in names}
        for sequence in (order, order[::-1]):  # reversed: drifting load hits every level
            for name in sequence:
                runs[name].append(_cpu_cell(servers[name], targets[name], body, load, seconds))
        for name, level in names.items():
            results[rows, level] = _mean(runs[name])
    return results


def _report_durability(results: dict[tuple[int, str], tuple[Cell, float]]) -> None:
    print(
        "\nthe prediction log's durability (this API, c=8, two runs each; default: "
        f"{DEFAULT_LEVEL}):"
    )
    print(
        "| rows a request | level | req/s | p50 ms | p99 ms | CPU ms a request "
        "| req/s vs queued | CPU vs queued |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (rows, level), (cell, cpu) in results.items():
        queued, queued_cpu = results[rows, LogDurability.QUEUED.value]
        print(
            f"| {rows:,} | {level} | {cell.requests_per_s:,.0f} | {cell.p50_ms:.2f} "
            f"| {cell.p99_ms:.2f} | {cpu:.3f} "
            f"| {100 * (cell.requests_per_s / max(queued.requests_per_s, 1e-9) - 1):+.0f}% "
            f"| {100 * (cpu / max(queued_cpu, 1e-9) - 1):+.0f}% |"
        )
    # As for the log's cost: CPU a request bounds a saturated server's throughput, and it is
    # far steadier than req/s on a shared machine. (`machine` waits for the disk, not the CPU:
    # its req/s is the figure that says what it costs.)
    for rows in DURABILITY_ROWS:
        queued_cpu = results[rows, LogDurability.QUEUED.value][1]
        cost = results[rows, LogDurability.PROCESS.value][1] / max(queued_cpu, 1e-9) - 1
        print(
            f"  process costs <= {100 * DURABILITY_MAX:.0f}% of queued's throughput (CPU a "
            f"request), {rows:,} row(s): {100 * cost:+.0f}%  {_ok(cost <= DURABILITY_MAX)}"
        )


def _body(model: LoadedModel, targets: dict[str, Target], rows: int) -> bytes:
    """This API's body of `rows` rows: the single record, or columns."""
    if rows == 1:
        return targets[OURS].single
    return json.dumps({"columns": _batch_columns(model, rows)}).encode()


def _cpu_cell(
    server: Server, target: Target, body: bytes, load: str, seconds: int
) -> tuple[Cell, float]:
    """A cell at concurrency 8, and the server's CPU milliseconds a request during it."""
    before = server.cpu_seconds()
    cell = _drive(load, target.url, body, 8, seconds)
    used = server.cpu_seconds() - before
    return cell, 1000 * used / max(cell.requests_per_s * seconds, 1)


def _mean(runs: list[tuple[Cell, float]]) -> tuple[Cell, float]:
    cells = [cell for cell, _ in runs]
    return Cell(
        sum(c.requests_per_s for c in cells) / len(cells),
        sum(c.p50_ms for c in cells) / len(cells),
        max(c.p99_ms for c in cells),
        sum(c.errors for c in cells),
    ), sum(cpu for _, cpu in runs) / len(runs)


def _report_log_cost(costs: list[LogCost]) -> None:
    print("\nthe prediction log's cost (this API, c=8, log on vs off, two runs each):")
    print(
        "| rows a request | log on req/s | log off req/s | throughput cost "
        "| CPU ms a request on | off | CPU cost |"
    )
    print("|---|---|---|---|---|---|---|")
    for cost in costs:
        lost = 1 - cost.on.requests_per_s / max(cost.off.requests_per_s, 1e-9)
        cpu = cost.cpu_ms_on / max(cost.cpu_ms_off, 1e-9) - 1
        print(
            f"| {cost.rows:,} | {cost.on.requests_per_s:,.0f} | {cost.off.requests_per_s:,.0f} "
            f"| {100 * lost:+.0f}% | {cost.cpu_ms_on:.3f} | {cost.cpu_ms_off:.3f} "
            f"| {100 * cpu:+.0f}% |"
        )
    # CPU a request is what bounds throughput on a saturated server, and it is far less noisy
    # than req/s on a shared machine: the target is checked on it.
    worst = max(c.cpu_ms_on / max(c.cpu_ms_off, 1e-9) - 1 for c in costs)
    print(
        f"  log costs <= {100 * LOG_COST_MAX:.0f}% at every size (CPU a request): "
        f"{100 * worst:+.0f}%  {_ok(worst <= LOG_COST_MAX)}"
    )


def _measure(
    targets: dict[str, Target], load: str, seconds: int
) -> dict[tuple[str, str, int], Cell]:
    """Every cell, the servers' runs of one cell back to back."""
    cells = {}
    for kind, levels in (
        ("1 record", SINGLE_CONCURRENCY),
        ("1,000 rows", BATCH_CONCURRENCY),
        ("1,000 records", (8,)),
    ):
        for concurrency in levels:
            for target in targets.values():
                body = target.single if kind == "1 record" else target.batch
                if kind == "1,000 records" and target.batch is not None:
                    body = target.records or target.batch
                if body is not None:
                    cells[target.name, kind, concurrency] = _drive(
                        load, target.url, body, concurrency, seconds
                    )
    return cells


def _report(
    cells: dict[tuple[str, str, int], Cell],
    cold_start_s: dict[str, float],
    rss_mb: dict[str, float],
    workers: int,
) -> None:
    print(
        "| load | c | this API req/s | p50 ms | p99 ms | mlflow req/s | p50 ms | p99 ms "
        "| x mlflow | floor req/s | p50 ms | % of floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, kind, c), cell in cells.items():
        if name != OURS:
            continue
        other = cells[MLFLOW, kind, c]
        floor = cells.get((FLOOR, kind, c))
        ratio = cell.requests_per_s / max(other.requests_per_s, 1e-9)
        errors = f" ({cell.errors}/{other.errors} errors)" if cell.errors or other.errors else ""
        floor_cols = (
            f"{floor.requests_per_s:,.0f} | {floor.p50_ms:.2f} | "
            f"{100 * cell.requests_per_s / max(floor.requests_per_s, 1e-9):.0f}%"
            if floor
            else "- | - | -"
        )
        print(
            f"| {kind} | {c} | {cell.requests_per_s:,.0f} | {cell.p50_ms:.2f} | "
            f"{cell.p99_ms:.2f} | {other.requests_per_s:,.0f} | {other.p50_ms:.2f} | "
            f"{other.p99_ms:.2f} | "
            f"{ratio:.1f}x{errors} | {floor_cols} |"
        )
    print()
    for name in (OURS, FLOOR, MLFLOW):
        print(
            f"{name}: cold start to first prediction {cold_start_s[name]:.2f} s; "
            f"largest process {rss_mb[name]:.0f} MB ({workers} worker(s))"
        )
    single_c8 = cells[OURS, "1 record", 8].requests_per_s
    batch_c8 = cells[OURS, "1,000 rows", 8].requests_per_s
    versus_mlflow = single_c8 / max(cells[MLFLOW, "1 record", 8].requests_per_s, 1e-9)
    batch_ratio = batch_c8 / max(cells[MLFLOW, "1,000 rows", 8].requests_per_s, 1e-9)
    records_c8 = cells[OURS, "1,000 records", 8].requests_per_s
    records_ratio = records_c8 / max(cells[MLFLOW, "1,000 records", 8].requests_per_s, 1e-9)
    of_floor = single_c8 / max(cells[FLOOR, "1 record", 8].requests_per_s, 1e-9)
    p50_gap = cells[OURS, "1 record", 1].p50_ms - cells[FLOOR, "1 record", 1].p50_ms
    cold, per_worker = cold_start_s[OURS], rss_mb[OURS]
    print("\ntargets (2 cores):")
    print(f"  1 record c=8 >= 20x mlflow:        {versus_mlflow:.1f}x  {_ok(versus_mlflow >= 20)}")
    print(f"  1 record c=8 >= 60% of the floor:  {100 * of_floor:.0f}%  {_ok(of_floor >= 0.6)}")
    print(f"  p50 c=1 within 0.5 ms of floor:    {p50_gap:+.2f} ms  {_ok(p50_gap <= 0.5)}")
    print(f"  1,000 rows c=8 >= 3x mlflow:       {batch_ratio:.1f}x  {_ok(batch_ratio >= 3)}")
    print(f"  1,000 records c=8 >= 3x mlflow:    {records_ratio:.1f}x  {_ok(records_ratio >= 3)}")
    print(f"  cold start <= 1.5 s:               {cold:.2f} s  {_ok(cold <= 1.5)}")
    print(f"  <= 300 MB a worker:                {per_worker:.0f} MB  {_ok(per_worker <= 300)}")


def _ok(passed: bool) -> str:
    return "met" if passed else "MISSED"


def _batch_columns(model: LoadedModel, rows: int) -> dict[str, list[Any]]:
    """`rows` records of the project's synthetic data, as columns (missing values as null)."""
    table = make_sample(model.contract, rows, seed=0)
    names = [*model.contract.feature_names, *(c.name for c in model.contract.sensitive)]
    return {
        name: [None if v is None or v != v else v for v in table[name].tolist()] for name in names
    }


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


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


if __name__ == "__main__":
    sys.exit(main())
