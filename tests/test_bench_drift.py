"""`make bench-drift`'s script in the default project, small and on our side only.

The full run (1M rows against evidently, a 10M-row log) takes minutes and installs evidently
into an environment of its own, so it is a command people run, not a test; this proves the
script still fits the code it measures: the drift checks, the log writer's format, compaction
and the reader. It writes only to a temporary folder.
"""

from __future__ import annotations

import pytest

from projects import Demo, sh

pytestmark = pytest.mark.slow


def test_bench_drift_runs_end_to_end(demo: Demo) -> None:
    python = str(demo.project / ".venv" / "bin" / "python")
    small = ("--rows", "20000", "--log-rows", "20000", "--skip-evidently")
    out = sh([python, "bench/drift.py", *small], demo.project).stdout
    for planted in ("score_a", "region", "language"):  # strong drift, decided like evidently
        assert any(
            line.startswith(f"| {planted} |") and "| drift |" in line for line in out.splitlines()
        )
    assert "| score_c | numeric | mean +0.03 sd (subtle) | wasserstein |" in out
    assert "Parquet (zstd), after compact-log" in out
    assert "read_log + drift checks, 20,000 rows" in out
    assert "peak memory <= 1024 MB" in out
    assert "MISSED" not in out
