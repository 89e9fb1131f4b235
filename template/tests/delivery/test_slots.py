"""The live slot as kubectl reports it, and the idle slot that gets the next image; kubectl's
answers are given here (no cluster runs in these tests)."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.delivery import slots
from {{ cookiecutter.package_name }}.delivery.slots import (
    LIVE_SERVICE,
    NAMESPACE,
    SlotError,
    idle_slot,
    live_slot,
)


def answering(stdout: str = "", stderr: str = "", code: int = 0) -> slots.Kubectl:
    def kubectl(arguments: list[str]) -> subprocess.CompletedProcess[str]:
        assert arguments[:5] == ["-n", NAMESPACE, "get", "service", LIVE_SERVICE]
        return subprocess.CompletedProcess(arguments, code, stdout, stderr)

    return kubectl


def service(selector: dict[str, str]) -> str:
    return json.dumps({"kind": "Service", "spec": {"selector": selector}})


@pytest.mark.parametrize(("live", "idle"), [("blue", "green"), ("green", "blue")])
def test_the_image_goes_to_the_slot_that_does_not_serve(live: str, idle: str) -> None:
    answer = answering(service({"app.kubernetes.io/name": LIVE_SERVICE, "slot": live}))
    assert live_slot(run=answer) == live
    assert idle_slot(live) == idle


def test_the_first_release_goes_to_blue() -> None:
    # --ignore-not-found: no live Service yet prints nothing and exits 0.
    assert live_slot(run=answering("")) is None
    assert idle_slot(None) == "blue"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (answering(stderr="error: You must be logged in", code=1), "You must be logged in"),
        (answering(service({"slot": "canary"})), "selects slot 'canary', not one of blue, green"),
        (answering(service({"app": LIVE_SERVICE})), "selects slot None"),
        (answering("<html>"), "not a Service"),
    ],
)
def test_what_is_not_a_live_slot_is_an_error(answer: slots.Kubectl, message: str) -> None:
    # A guess would be worse than stopping: the image could replace the slot that serves.
    with pytest.raises(SlotError, match=message):
        live_slot(run=answer)


def test_the_command_prints_the_idle_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slots, "kubectl", answering(service({"slot": "blue"})))
    result = CliRunner().invoke(app, ["idle-slot"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "green\n"
    assert "live slot: blue; the image goes to green" in result.stderr
