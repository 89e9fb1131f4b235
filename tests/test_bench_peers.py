"""`make bench-peers`'s runner (scripts/bench_peers.py) on the default project, without the peers.

The full run installs mlflow, MLServer and BentoML into environments of their own and takes
minutes, so it is a command people run, not a test; this proves the machinery still fits the
project it measures: the servers started and probed round after round, every body of this
service answered, wrk's cells, the table and its ratios. Only this service and the floor, at
tiny sizes; it writes only to temporary folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from blueprint import ROOT
from projects import Demo, sh
from system import skip_without

pytestmark = pytest.mark.slow

SCRIPT = str(ROOT / "scripts" / "bench_peers.py")


def test_the_runner_measures_this_service_and_the_floor(demo: Demo, tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        skip_without("wrk")
    python = str(demo.project / ".venv" / "bin" / "python")
    small = ("--only", "this,floor", "--seconds", "1", "--rounds", "2", "--rows", "20")
    out = sh(
        [python, SCRIPT, "--project", str(demo.project), "--envs", str(tmp_path), *small],
        tmp_path,
    ).stdout
    table = {line.split(" | ")[0]: line for line in out.splitlines() if line.startswith("| ")}
    assert set(table) == {
        "| contender",
        "| this service, /predict (records)",
        "| this service, /predict (columns)",
        "| this service, /v2 infer",
        "| floor: bench/floor.py",
    }
    assert "| 20 records, c=8, req/s |" in table["| contender"]
    records = table["| this service, /predict (records)"].split(" | ")
    assert records[2] == records[4] == "1.0x"  # the ratios' own row
    floor = table["| floor: bench/floor.py"].split(" | ")
    assert floor[3:5] == ["-", "-"]  # the floor takes single records only
    assert "errors" not in out
    assert "round 2 of 2 done" in out
    assert "load average (1 min)" in out
    assert not list(tmp_path.iterdir())  # no peer: no environment made


def test_a_contender_it_does_not_know_is_refused(demo: Demo, tmp_path: Path) -> None:
    python = str(demo.project / ".venv" / "bin" / "python")
    done = sh(
        [
            python,
            SCRIPT,
            "--project",
            str(demo.project),
            "--envs",
            str(tmp_path),
            "--only",
            "seldon",
        ],
        tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert "--only takes this, floor, mlflow, mlserver, bentoml" in done.stdout
