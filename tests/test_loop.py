"""The second half of `make demo`: `make loop-demo` closes the loop in the default project.

Serve the champion, send traffic that drifts in a known way, monitor it, receive new labelled
data, retrain through the same contract and gate, and swap a promoted champion into the
running service with no failed request. The test holds the project for its whole run: the
loop changes the raw table, the registry and the exported champion.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from projects import Demo, registry_state, sh

pytestmark = pytest.mark.slow


def test_make_loop_demo_closes_the_loop(demo_alone: Demo) -> None:
    project = demo_alone.project
    before = registry_state(project)
    audit_lines = len((project / "reports" / "audit.jsonl").read_text().splitlines())
    start = time.monotonic()
    done = sh(["make", "loop-demo"], project, check=False)
    said = done.stdout + done.stderr
    print(f"make loop-demo took {time.monotonic() - start:.0f} s\n{said[-4000:]}")
    assert done.returncode == 0, said

    # Each of the seven steps was printed, in order.
    steps = [int(n) for n in re.findall(r"^\[(\d)/7\]", done.stdout, re.MULTILINE)]
    assert steps == [1, 2, 3, 4, 5, 6, 7], done.stdout

    # The monitor flagged the shifted feature and no other.
    drift = json.loads((project / "reports" / "drift.json").read_text())
    assert drift["verdict"] == "drift"
    assert drift["drifted_features"] == ["loan_amount"]

    # The retrain was recorded with its trigger and the report behind it.
    audit = [
        json.loads(line)
        for line in (project / "reports" / "audit.jsonl").read_text().splitlines()[audit_lines:]
    ]
    retrains = [entry for entry in audit if entry["event"] == "retrain"]
    assert len(retrains) == 1, audit
    assert retrains[0]["reason"] == "drift"
    assert "drift.json" in json.dumps(retrains[0])

    # The gate decided, and the registry and the service agree with it.
    decision = json.loads((project / "reports" / "decision.json").read_text())
    after = registry_state(project)
    champion = json.loads((project / "models" / "champion" / "metadata.json").read_text())
    if decision["promoted"]:
        assert after["versions"] == [*before["versions"], int(decision["version"])]
        assert after["aliases"]["champion"] == decision["version"]
    else:
        assert after["aliases"]["champion"] == before["aliases"]["champion"]
    assert champion["version"] == after["aliases"]["champion"]
    assert f"serving v{after['aliases']['champion']};" in done.stdout
    assert re.search(r"\b\d+ requests during the retrain, 0 failed", done.stdout), done.stdout
