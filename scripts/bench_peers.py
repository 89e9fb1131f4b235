"""`make bench-peers`: a generated project's service against the servers a user would pick instead.

One champion, served by each contender on loopback, 1 worker each, every peer in a uv
environment of its own (made under --envs, the project's Python):
- this service (`/predict` with a list of records and with columns, and the Open Inference
  Protocol's `/v2/models/{name}/infer`), its prediction log on, as deployed;
- `mlflow models serve` (the model's own requirements.txt): its registered model takes only
  the encoded float tensor, so it is sent the pre-encoded matrix (`{"inputs": ...}`);
- MLServer 1.7 + mlserver-sklearn (V2): the encoded columns with the pandas codec, and the
  pre-encoded FP64 tensor;
- BentoML 1.4 (scripts/peers/bento_service.py): the pre-encoded matrix;
- the floor: the project's bench/floor.py, a bare FastAPI route taking the same record model.
Each gets the most favourable body it accepts: the peers skip the contract's checks and
encoding. No server writes an access line a request (this service and the floor at
LOG_LEVEL=WARNING, mlflow's uvicorn with UVICORN_ACCESS_LOG=false, MLServer with debug off,
BentoML's access log off). Load: wrk at concurrency 8 for --seconds a cell; each round starts
every server (cold start: process start to its first 200), runs every cell in a rotated order,
reads the servers' resident memory and stops them, so the machine's noise hits all alike.
Printed: medians and ranges over the rounds, and this service's median over each contender's.

Runs with the project's Python (it imports the project's bench/bench.py):
  <project>/.venv/bin/python scripts/bench_peers.py --project <project> --envs <folder>
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

PEERS = Path(__file__).resolve().with_name("peers")
CONCURRENCY = 8
THIS = "this service"
# What each peer's environment installs (mlflow's: the model's own requirements.txt). MLServer
# 1.7.1's inference worker dies with uvloop 0.23 ("There is no current event loop").
MLSERVER = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0")
BENTOML = ("bentoml>=1.4,<1.5",)
CONTENDERS = ("this", "floor", "mlflow", "mlserver", "bentoml")
TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "DO_NOT_TRACK": "1",
}


@dataclass(frozen=True)
class Row:
    """One line of the table: a server and the body it is sent."""

    label: str
    server: str
    url: str
    single: bytes | None
    batch: bytes | None


@dataclass(frozen=True)
class Spec:
    """How to start one server: its command, its environment and the row it is probed with."""

    command: list[str]
    env: dict[str, str]
    probe: Row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", type=Path, required=True, help="a project with a champion")
    parser.add_argument("--envs", type=Path, required=True, help="where the peers' envs go")
    parser.add_argument("--uv", help="the uv that makes the peers' environments (default: on PATH)")
    parser.add_argument("--seconds", type=int, default=5, help="duration of each cell")
    parser.add_argument("--rounds", type=int, default=3, help="servers started and measured")
    parser.add_argument("--rows", type=int, default=1_000, help="records in a batch")
    parser.add_argument(
        "--only", default=",".join(CONTENDERS), help=f"a comma list of {', '.join(CONTENDERS)}"
    )
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(CONTENDERS))
    if unknown or "this" not in only:
        print(f"error: --only takes {', '.join(CONTENDERS)} and must name `this`; got {args.only}")
        return 2
    model_dir = args.project.resolve() / "models" / "champion"
    if not (model_dir / "metadata.json").is_file():
        print(f"error: no champion in {model_dir}; run `make all` in {args.project} first")
        return 1
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (scripts/system-packages.sh installs it)")
        return 1
    # Else the project's own: its Makefile installs uv into .tools/ when none is on PATH.
    args.uv = args.uv or shutil.which("uv") or str(args.project.resolve() / ".tools" / "bin" / "uv")
    if set(only) - {"this", "floor"} and shutil.which(args.uv) is None:
        print(f"error: the peers' environments are made by uv, and {args.uv} is no uv; pass --uv")
        return 1
    os.environ.update(TELEMETRY_OFF)
    # Set in some shells; every server would then compile its libraries at each start.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.path.insert(0, str(args.project.resolve() / "bench"))
    bench = importlib.import_module("bench")  # the project's bench/bench.py: its servers, wrk
    with (
        tempfile.TemporaryDirectory(prefix="bench-peers-") as scratch,
        # The service's metrics' files in memory, as its image keeps them.
        tempfile.TemporaryDirectory(prefix="bench-peers-", dir=bench.METRICS_MEMORY) as metrics,
    ):
        rows, specs = _contenders(bench, model_dir, Path(scratch), Path(metrics), args, only)
        loads = [os.getloadavg()[0]]
        results = _run(bench, rows, specs, args)
        loads.append(os.getloadavg()[0])
    _report(rows, results, args, loads)
    return 0


def _contenders(
    bench: ModuleType,
    model_dir: Path,
    scratch: Path,
    metrics: Path,
    args: argparse.Namespace,
    only: list[str],
) -> tuple[list[Row], dict[str, Spec]]:
    """The table's rows and how to start each server, the peers' environments made first."""
    model = bench.load_model_dir(model_dir)
    record = bench.example_record(model.contract)
    columns = bench._batch_columns(model, args.rows)
    records = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    # The encoded matrices the peers are sent: what the champion's estimator takes.
    encode = model.contract.encode
    single_matrix = encode({name: [value] for name, value in record.items()})
    batch_matrix = encode(columns)
    features = list(model.contract.feature_names)
    ports = {name: bench._free_port() for name in (THIS, *CONTENDERS)}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    infer = f"{url[THIS]}/v2/models/{model.name}/infer"
    rows = [
        Row(
            f"{THIS}, /predict (records)",
            THIS,
            f"{url[THIS]}/predict",
            _json(record),
            _json(records),
        ),
        Row(
            f"{THIS}, /predict (columns)",
            THIS,
            f"{url[THIS]}/predict",
            None,
            _json({"columns": columns}),
        ),
        Row(
            f"{THIS}, /v2 infer",
            THIS,
            infer,
            _json(_v2(bench, model, {k: [v] for k, v in record.items()})),
            _json(_v2(bench, model, columns)),
        ),
    ]
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "--host", "127.0.0.1"]
    uvicorn += ["--workers", "1", "--no-access-log"]
    specs = {
        THIS: Spec(
            [*uvicorn, f"{_package(bench)}.serving.app:create_app", "--port", str(ports[THIS])],
            {
                "MODEL_DIR": str(model_dir),
                "PREDICTION_LOG_DIR": str(scratch / "predictions"),
                "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            },
            rows[0],
        )
    }
    if "floor" in only:
        rows.append(
            Row("floor: bench/floor.py", "floor", f"{url['floor']}/predict", _json(record), None)
        )
        specs["floor"] = Spec(
            [*uvicorn, "floor:create_app", "--port", str(ports["floor"])],
            {"MODEL_DIR": str(model_dir), "PYTHONPATH": str(args.project.resolve() / "bench")},
            rows[-1],
        )
    needs_joblib = {"mlserver", "bentoml"} & set(only)
    estimator = scratch / "model.joblib"
    if needs_joblib:
        _export_joblib(model_dir / "model", estimator)
    sklearn = _pinned(model_dir / "model" / "requirements.txt", "scikit-learn")

    def bodies(shape: Callable[[Any], dict[str, Any]]) -> tuple[bytes, bytes]:
        """A peer's single and batch bodies, each shaped from the encoded matrix."""
        return _json(shape(single_matrix)), _json(shape(batch_matrix))

    if "mlflow" in only:
        env = _environment(args, "mlflow", ["-r", str(model_dir / "model" / "requirements.txt")])
        label = f"mlflow {_version(env, 'mlflow')} `models serve` (pre-encoded matrix)"
        rows.append(Row(label, "mlflow", f"{url['mlflow']}/invocations", *bodies(_inputs)))
        specs["mlflow"] = Spec(
            [
                *(str(env / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir / "model")),
                *("--env-manager", "local", "-w", "1", "-h", "127.0.0.1"),
                *("-p", str(ports["mlflow"])),
            ],
            {
                # mlflow's local env manager runs its tools from the environment's bin.
                "PATH": f"{env / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                # Its uvicorn without access lines, as this service runs here.
                "UVICORN_ACCESS_LOG": "false",
            },
            rows[-1],
        )
    if "mlserver" in only:
        env = _environment(args, "mlserver", [*MLSERVER, sklearn])
        folder = _mlserver_folder(scratch / "mlserver", estimator, ports, bench)
        v2 = f"{url['mlserver']}/v2/models/champion/infer"
        label = f"MLServer {_version(env, 'mlserver')} + mlserver-sklearn (pandas codec)"
        rows.append(Row(label, "mlserver", v2, *bodies(partial(_pandas_codec, features))))
        rows.append(Row("MLServer, pre-encoded FP64 tensor", "mlserver", v2, *bodies(_tensor)))
        specs["mlserver"] = Spec(
            [str(env / "bin" / "mlserver"), "start", str(folder)], {}, rows[-1]
        )
    if "bentoml" in only:
        env = _environment(args, "bentoml", [*BENTOML, sklearn])
        label = f"BentoML {_version(env, 'bentoml')} (pre-encoded matrix)"
        rows.append(Row(label, "bentoml", f"{url['bentoml']}/predict", *bodies(_inputs)))
        specs["bentoml"] = Spec(
            [
                *(str(env / "bin" / "bentoml"), "serve", "bento_service:Champion"),
                *("--working-dir", str(PEERS), "--host", "127.0.0.1"),
                *("--port", str(ports["bentoml"])),
            ],
            {"MODEL_FILE": str(estimator)},
            rows[-1],
        )
    return rows, specs


Figures = dict[tuple[str, str], list[float]]


@dataclass
class Results:
    rate: Figures  # (row label, "single" or "batch") -> req/s, one a round
    errors: dict[tuple[str, str], int]
    cold_start_s: dict[str, list[float]]
    rss_mb: dict[str, list[float]]


def _run(
    bench: ModuleType, rows: list[Row], specs: dict[str, Spec], args: argparse.Namespace
) -> Results:
    results = Results({}, {}, {name: [] for name in specs}, {name: [] for name in specs})
    cells = [
        (row, kind, body)
        for kind in ("single", "batch")
        for row in rows
        if (body := row.single if kind == "single" else row.batch) is not None
    ]
    for round_ in range(args.rounds):
        servers: dict[str, Any] = {}
        try:
            for name, spec in specs.items():  # one at a time: a start has the machine to itself
                servers[name] = bench.Server(spec.command, spec.env, spec.probe)
                results.cold_start_s[name].append(servers[name].cold_start_s)
            if round_ == 0:
                for row, _, body in cells:
                    _check(row, body)
            shift = round_ * len(cells) // args.rounds  # each round begins elsewhere
            for row, kind, body in cells[shift:] + cells[:shift]:
                cell = bench._wrk(row.url, body, CONCURRENCY, args.seconds)
                key = (row.label, kind)
                results.rate.setdefault(key, []).append(cell.requests_per_s)
                results.errors[key] = results.errors.get(key, 0) + cell.errors
            for name, server in servers.items():  # after the load: every process of the server
                tree = bench._process_tree(server.process.pid)
                results.rss_mb[name].append(sum(bench._rss_kb(pid) for pid in tree) / 1024)
        finally:
            for server in servers.values():
                server.stop()
        print(f"round {round_ + 1} of {args.rounds} done", flush=True)
    return results


def _check(row: Row, body: bytes) -> None:
    """The body is answered with a 200 before it is timed, or the run stops naming it."""
    request = urllib.request.Request(
        row.url, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60):
            return
    except urllib.error.HTTPError as error:
        answer = error.read()[:500].decode(errors="replace")
        raise SystemExit(f"error: {row.label} answered {error.code}: {answer}") from None


def _report(
    rows: list[Row], results: Results, args: argparse.Namespace, loads: list[float]
) -> None:
    ours = {
        kind: statistics.median(results.rate[f"{THIS}, /predict (records)", kind])
        for kind in ("single", "batch")
    }
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n{when}; {os.cpu_count()} cores ({_cpu_model()}); {platform.python_version()}")
    print(f"load average (1 min) {loads[0]:.1f} before, {loads[1]:.1f} after")
    print(
        f"wrk on loopback, c={CONCURRENCY}, {args.seconds} s a cell, {args.rounds} rounds, "
        f"1 worker each; a batch is {args.rows:,} records; median (range) of the rounds; "
        "ours ÷ it: this service's /predict (records) median over the contender's\n"
    )
    print(
        f"| contender | 1 record, c={CONCURRENCY}, req/s | ours ÷ it | {args.rows:,} records, "
        f"c={CONCURRENCY}, req/s | ours ÷ it | cold start, s | RSS after load, MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        figures = []
        for kind in ("single", "batch"):
            rates = results.rate.get((row.label, kind))
            if rates is None:
                figures += ["-", "-"]
                continue
            errors = results.errors[row.label, kind]
            figures.append(_spread(rates, "{:,.0f}") + (f" ({errors} errors)" if errors else ""))
            figures.append(f"{ours[kind] / max(statistics.median(rates), 1e-9):.1f}x")
        cold, rss = results.cold_start_s[row.server], results.rss_mb[row.server]
        print(
            f"| {row.label} | {' | '.join(figures)} | {_spread(cold, '{:.2f}')} "
            f"| {_spread(rss, '{:.0f}')} |"
        )
    print(f"\ncommand: {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")


def _spread(values: list[float], form: str) -> str:
    low, high = min(values), max(values)
    middle = form.format(statistics.median(values))
    if len(values) == 1:
        return middle
    return f"{middle} ({form.format(low)}-{form.format(high)})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _environment(args: argparse.Namespace, name: str, packages: list[str]) -> Path:
    """The peer's own environment under --envs, on this Python, with `packages` installed."""
    env = Path(args.envs, name).resolve()
    if not (env / "bin" / "python").exists():
        _sh([args.uv, "venv", "--quiet", "--python", sys.executable, str(env)])
    print(f"{name}: uv pip install {' '.join(packages)} (into {env})", flush=True)
    # Compiled now, so that no peer's cold start pays for compiling its libraries.
    python = str(env / "bin" / "python")
    _sh([args.uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, *packages])
    return env


def _version(env: Path, package: str) -> str:
    """`package`'s version installed in the peer's environment, for the table."""
    done = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-c",
            f"import importlib.metadata as m; print(m.version({package!r}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _sh(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{done.stderr[-3000:]}")


def _export_joblib(mlflow_model: Path, target: Path) -> None:
    """The champion's estimator as the joblib file MLServer and BentoML load."""
    import joblib
    import mlflow.sklearn

    joblib.dump(mlflow.sklearn.load_model(str(mlflow_model)), target)


def _pinned(requirements: Path, package: str) -> str:
    """The model's own pin of `package` (its requirements.txt), so every peer unpickles it."""
    for line in requirements.read_text().splitlines():
        if line.split("==")[0].strip() == package:
            return line.strip()
    raise SystemExit(f"error: {requirements} pins no {package}")


def _mlserver_folder(
    folder: Path, estimator: Path, ports: dict[str, int], bench: ModuleType
) -> Path:
    folder.mkdir()
    settings = {
        "host": "127.0.0.1",
        "http_port": ports["mlserver"],
        "grpc_port": bench._free_port(),
        "metrics_port": bench._free_port(),
        "parallel_workers": 1,  # its default: one inference process beside the HTTP server
        "debug": False,  # no access line a request, as this service runs here
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    model = {
        "name": "champion",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(estimator), "version": "1"},
    }
    (folder / "model-settings.json").write_text(json.dumps(model))
    return folder


def _package(bench: ModuleType) -> str:
    """The generated package's name: where the project's bench.py takes its model loader from."""
    return str(bench.load_model_dir.__module__).split(".")[0]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _listed(matrix: Any) -> list[list[float | None]]:
    # JSON has no NaN: a missing value goes as null.
    return [[None if v != v else float(v) for v in row] for row in matrix.tolist()]


def _inputs(matrix: Any) -> dict[str, Any]:
    return {"inputs": _listed(matrix)}


def _tensor(matrix: Any) -> dict[str, Any]:
    data = [v for row in _listed(matrix) for v in row]
    return {
        "inputs": [
            {"name": "input-0", "shape": list(matrix.shape), "datatype": "FP64", "data": data}
        ]
    }


def _pandas_codec(features: list[str], matrix: Any) -> dict[str, Any]:
    listed = _listed(matrix)
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": name,
                "shape": [len(listed)],
                "datatype": "FP64",
                "data": [r[i] for r in listed],
            }
            for i, name in enumerate(features)
        ],
    }


def _v2(bench: ModuleType, model: Any, columns: dict[str, list[Any]]) -> dict[str, Any]:
    """This service's V2 request: each column a named tensor of the contract's datatype."""
    declared = importlib.import_module(f"{_package(bench)}.serving.v2").DECLARED
    types = {column.name: declared[column.type] for column in model.contract.described}
    return {
        "inputs": [
            {"name": name, "shape": [len(values)], "datatype": types[name], "data": values}
            for name, values in columns.items()
        ]
    }


if __name__ == "__main__":
    sys.exit(main())
