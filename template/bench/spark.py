"""`make bench-spark`: batch scoring in one process against Spark, side by side, one run.

The same Parquet table (ROWS rows of the sample, written a million rows at a time) is scored by
the exported champion four ways, each a fresh `predict` process, as a user runs it:
1. `predict` in one process (pandas; the baseline);
2. `predict --engine spark --master local[2]` (Spark in the driver's JVM, two task threads);
3. and 4. `--master spark://127.0.0.1:...` on a standalone cluster on loopback with one and
   with two workers (one core and 2 GB each).
Printed: wall time, rows a second, peak resident memory of the command (with the driver's
JVM; in local mode its executor too) and of each cluster executor (its JVM plus its share of
the Python workers), the ratio to the first row, then 2 workers over 1. Each Spark row pays
its JVMs' start (seconds): small ROWS measure that, not the scoring. On a
2-core machine two workers can at best halve the time of one (a ratio of 2), less what the
driver, the JVMs and the Python workers take from the same cores.

Usage: python bench/spark.py [--rows 10000000] [--model-dir models/champion]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.serving.model_store import load_model_dir
from {{ cookiecutter.package_name }}.spark.standalone import StandaloneCluster

CLI = str(Path(sys.executable).with_name("{{ cookiecutter.project_slug }}"))
PART_ROWS = 1_000_000
DRIVER_MEMORY, EXECUTOR_MEMORY, WORKER_MEMORY = "3g", "1800m", "2g"
POLL_S = 0.25


@dataclass
class Peaks:
    """Peak resident memory (MB), polled from /proc while a command runs: its whole process
    tree (the CLI, the driver's JVM and, in local mode, the Python workers), and each
    executor JVM and Python worker outside that tree (a cluster's)."""

    tree: float = 0.0
    executors: dict[int, float] = field(default_factory=dict)
    workers: dict[int, float] = field(default_factory=dict)

    def poll(self, root: int) -> None:
        parents, rss, commands = {}, {}, {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):  # a process may end while it is read
                    status = (entry / "status").read_text()
                    commands[int(entry.name)] = (entry / "cmdline").read_bytes()
                    fields = dict(line.split(":", 1) for line in status.splitlines())
                    parents[int(entry.name)] = int(fields["PPid"])
                    rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        tree = {root}
        for pid in sorted(parents):  # children after their parents: pids grow
            if parents[pid] in tree:
                tree.add(pid)
        self.tree = max(self.tree, sum(rss.get(pid, 0.0) for pid in tree))
        for pid, command in commands.items():
            if pid in tree:
                continue
            if b"CoarseGrainedExecutorBackend" in command:
                self.executors[pid] = max(self.executors.get(pid, 0.0), rss.get(pid, 0.0))
            elif b"pyspark.daemon" in command or b"pyspark/daemon" in command:
                self.workers[pid] = max(self.workers.get(pid, 0.0), rss.get(pid, 0.0))

    def per_executor(self) -> float | None:
        """An executor's JVM and its share of the Python workers it started."""
        if not self.executors:
            return None
        return max(self.executors.values()) + sum(self.workers.values()) / len(self.executors)


@dataclass
class Row:
    name: str
    seconds: float
    peaks: Peaks


def run(name: str, arguments: list[str], rows: int) -> Row:
    """One `predict` process, timed, with its memory and the executors' polled until it ends."""
    peaks = Peaks()
    started = time.perf_counter()
    # The project's own CLI, with arguments this script builds.
    process = subprocess.Popen([CLI, "predict", *arguments], stdout=subprocess.PIPE, text=True)  # noqa: S603
    while process.poll() is None:
        peaks.poll(process.pid)
        time.sleep(POLL_S)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{name}: predict failed ({process.returncode})")
    print(f"  {name}: {seconds:.1f} s, {rows / seconds:,.0f} rows/s", flush=True)
    return Row(name, seconds, peaks)


def write_input(path: Path, rows: int, model_dir: Path) -> None:
    contract = load_model_dir(model_dir).contract
    writer: pq.ParquetWriter | None = None
    for first in range(0, rows, PART_ROWS):
        part = make_sample(contract, min(PART_ROWS, rows - first), seed=first, first_id=first + 1)
        table = pa.Table.from_pandas(part, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        # Row groups of 128k rows: Spark splits a file by row group, so each task gets some.
        writer.write_table(table.cast(writer.schema), row_group_size=131_072)
    if writer is not None:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--model-dir", type=Path, default=Path("models/champion"))
    options = parser.parse_args()
    if not (options.model_dir / "metadata.json").is_file():
        raise SystemExit(f"{options.model_dir}: no exported model; run `make export-model`")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # the driver and the cluster stay on loopback
    folder = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    # Spark's default heaps (1 GB) run out on 10M rows (measured: OutOfMemoryError while writing,
    # in local mode): configured as a user would, in spark-defaults.conf.
    (folder / "conf").mkdir()
    (folder / "conf" / "spark-defaults.conf").write_text(
        f"spark.driver.memory {DRIVER_MEMORY}\nspark.executor.memory {EXECUTOR_MEMORY}\n"
    )
    os.environ["SPARK_CONF_DIR"] = str(folder / "conf")
    try:
        source = folder / "input.parquet"
        print(f"writing {options.rows:,} rows to {source}", flush=True)
        write_input(source, options.rows, options.model_dir)
        model = ["--model-dir", str(options.model_dir)]
        single = [str(source), str(folder / "one.parquet"), *model]
        rows = [run("one process", single, options.rows)]
        spark = [str(source), str(folder / "spark"), "--engine", "spark", *model]
        rows.append(run("spark local[2]", [*spark, "--master", "local[2]"], options.rows))
        for workers in (1, 2):
            cluster = StandaloneCluster(
                folder / f"cluster-{workers}", workers=workers, memory=WORKER_MEMORY
            )
            with cluster as master:
                name = f"standalone, {workers} worker{'s' if workers > 1 else ''}"
                rows.append(run(name, [*spark, "--master", master], options.rows))
        report(rows, options.rows)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(rows: list[Row], count: int) -> None:
    base = rows[0].seconds
    print(f"\nbatch scoring, {count:,} rows, load {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"{'how':<24} {'s':>8} {'rows/s':>12} {'peak MB':>9} {'MB/executor':>12} {'vs 1':>6}")
    for row in rows:
        executor = row.peaks.per_executor()
        shown = f"{executor:,.0f}" if executor is not None else "-"
        print(
            f"{row.name:<24} {row.seconds:>8.1f} {count / row.seconds:>12,.0f} "
            f"{row.peaks.tree:>9,.0f} {shown:>12} {base / row.seconds:>5.2f}x"
        )
    one, two = rows[-2].seconds, rows[-1].seconds
    print(f"2 workers over 1: {one / two:.2f}x (the ceiling on 2 cores is 2x)")


if __name__ == "__main__":
    main()
