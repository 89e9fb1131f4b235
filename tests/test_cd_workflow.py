"""cd.yml's steps that need no cluster, run the way the workflow runs them, in its order, on the
session's default project (deployment: docker).

The steps are read from the project's own `.github/workflows/cd.yml`, so a change to the
workflow changes what runs here: the export step (`make release-model`), with the version the
release names and with another one; then the smoke test CD runs after a deployment (`make
smoke-test`, which `make smoke-test-cluster` runs through its port-forward) against `make serve`
on loopback, with the champion's version and with another one. The deployment's manifests (the
kubernetes answer) are rendered and checked by the generated suite (tests/deploy/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_end_to_end import Served, service

from projects import DEMO, Demo, locked, registry_state, sh

pytestmark = pytest.mark.slow

__all__ = ["service"]  # the module's own `make serve`, started as test_end_to_end starts it


def cd_steps(project: Path, job: str) -> dict[str, dict[str, Any]]:
    """The job's steps by id (or name), in the workflow's order."""
    workflow = yaml.safe_load((project / ".github" / "workflows" / "cd.yml").read_text())
    steps = workflow["jobs"][job]["steps"]
    return {step.get("id") or step.get("name", step.get("uses")): step for step in steps}


def run_step(step: dict[str, Any], project: Path, env: dict[str, str]) -> Any:
    """A `run:` step as a GitHub runner runs it: bash, -e and pipefail, from the checkout."""
    command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]]
    return sh(command, project, env=env, check=False)


def test_the_export_step_ships_the_version_asked_for_and_refuses_another(
    demo: Demo, shared: Path, tmp_path: Path
) -> None:
    steps = cd_steps(demo.project, "image")
    names = list(steps)
    # What comes before the export on the runner, and what it gets from GitHub.
    assert names.index("export") == names.index("Install") + 1
    export = steps["export"]
    assert set(export["env"]) == {"MLFLOW_TRACKING_URI", "WANTED"}
    outputs = tmp_path / "github_output"
    # The export goes to a folder of the test's: the demo's models/champion is read by others.
    dest = tmp_path / "champion"
    env = {"GITHUB_OUTPUT": str(outputs), "MODEL_DIR": str(dest)}
    # `dvc pull` takes the project's DVC lock and rewrites what differs: held alone.
    with locked(shared, DEMO):
        champion = registry_state(demo.project)["aliases"]["champion"]
        wrong = str(int(champion) + 1)
        refused = run_step(export, demo.project, {**env, "WANTED": wrong})
        written = [path.name for path in (dest, outputs) if path.exists()]
        shipped = run_step(export, demo.project, {**env, "WANTED": champion})

    assert refused.returncode != 0, refused.stdout
    message = f"the registry's champion is v{champion}, not v{wrong}: move the 'champion' alias"
    assert message in refused.stderr
    assert written == []

    assert shipped.returncode == 0, shipped.stderr
    assert outputs.read_text() == f"version={champion}\n"
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
