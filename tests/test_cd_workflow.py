"""cd.yml's steps that need no cluster, run the way the workflow runs them, in its order, on the
session's default project (deployment: docker).

The export job's `make` lines are read from the project's own `.github/workflows/cd.yml`
(tests/workflows.py), so a change to the workflow changes what runs here: `make install`, then
`make release-model` with the version the release names and with another one. Then the smoke
test CD runs after a deployment (`make smoke-test`, which `make smoke-test-cluster` runs through
its port-forward) against `make serve` on loopback, with the champion's version and with
another one. The cluster steps (the kubernetes answer) run in the generated suite
(tests/deploy/test_cd_steps.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_end_to_end import Served, service

from projects import DEMO, Demo, locked, registry_state, sh
from workflows import run_make_lines

pytestmark = pytest.mark.slow

__all__ = ["service"]  # the module's own `make serve`, started as test_end_to_end starts it


def test_the_export_step_ships_the_version_asked_for_and_refuses_another(
    demo: Demo, shared: Path, tmp_path: Path
) -> None:
    workflow = demo.project / ".github" / "workflows" / "cd.yml"
    runner = demo.project.parent / "cd-image-runner"
    # The export goes to a folder of the test's: the demo's models/champion is read by others.
    dest = tmp_path / "champion"
    # `dvc pull` takes the project's DVC lock and rewrites what differs: held alone.
    with locked(shared, DEMO):
        champion = registry_state(demo.project)["aliases"]["champion"]
        wrong = str(int(champion) + 1)
        given = {"MLFLOW_TRACKING_URI": "", "EXPECT": wrong}
        refused = run_make_lines(workflow, "image", demo.project, given, {"MODEL_DIR": str(dest)})
        written = [path.name for path in (dest,) if path.exists()]
        outputs_when_refused = (runner / "output").read_text()
        given["EXPECT"] = champion
        shipped = run_make_lines(workflow, "image", demo.project, given, {"MODEL_DIR": str(dest)})

    assert [line for line, _ in shipped] == ["make install", "make release-model"]
    said = refused[-1][1].stdout + refused[-1][1].stderr
    assert refused[-1][1].returncode != 0, said
    message = f"the registry's champion is v{champion}, not v{wrong}: move the 'champion' alias"
    assert message in said
    assert written == []
    assert outputs_when_refused == ""

    assert all(done.returncode == 0 for _, done in shipped), shipped[-1][1].stderr
    assert (runner / "output").read_text() == f"version={champion}\n"
    metadata = json.loads((dest / "metadata.json").read_text())
    assert (metadata["version"], metadata["alias"]) == (champion, "champion")
    assert (metadata["scorer"], metadata["compiled"]) == ("treelite", "tl2cgen")


def test_the_smoke_test_passes_the_deployed_version_and_refuses_another(
    demo: Demo, service: Served
) -> None:
    smoke = ["make", "smoke-test", f"URL={service.url}"]
    passed = sh([*smoke, f"MODEL_VERSION={service.version}"], demo.project, check=False)
    assert passed.returncode == 0, passed.stderr
    assert f"ready: model v{service.version}" in passed.stdout
    assert "smoke test passed" in passed.stdout

    wrong = str(int(service.version) + 1)
    refused = sh([*smoke, f"MODEL_VERSION={wrong}"], demo.project, check=False)
    assert refused.returncode != 0, refused.stdout
    expected = f"/ready: the service runs model v{service.version}, not v{wrong}"
    assert f"smoke test failed: {expected}" in refused.stderr
