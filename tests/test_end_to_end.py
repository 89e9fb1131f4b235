"""The README's main command: `make demo` generates the default project and runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from blueprint import ROOT, run


@pytest.mark.slow
def test_make_demo_runs_the_default_project_from_a_fresh_environment(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    done = run(["make", "demo", f"DEMO_DIR={demo}"], ROOT)
    assert (demo / ".venv" / "bin" / "python").is_file(), "no fresh environment was made"
    assert "passed" in done.stdout
    assert run(["git", "status", "--porcelain"], demo).stdout == ""
