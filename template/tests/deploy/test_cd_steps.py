"""cd.yml's cluster steps, read from the workflow and run as a runner runs them (bash -e, from the
project's root), against a kubectl that records instead of applying: its `kustomize` is the real
one, so what `make deploy`, `make promote` and `make rollback` apply or delete is compared with
what render-manifests renders; its port-forward reaches a stub of the service's three routes, so
the smoke tests run through it. A change to the workflow or the Makefile changes what runs here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from {{ cookiecutter.package_name }}.delivery.manifests import render

from .checks import Document
from .test_manifests import IMAGE, PROJECT, SLUG, needs_kubectl, renderings

WORKFLOW = PROJECT / ".github" / "workflows" / "cd.yml"
VERSION = "7"

pytestmark = [
    needs_kubectl,
    pytest.mark.skipif(not WORKFLOW.is_file(), reason="no cd.yml (ci: none)"),
]

__all__ = ["renderings"]  # test_manifests' renderings, compared with what was applied

# The fake kubectl: one JSON line a call (the file applied or deleted included); `get service`
# answers FAKE_LIVE_SLOT's Service; `port-forward` serves /ready, /openapi.json and /predict.
FAKE_KUBECTL = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

args = sys.argv[1:]
if args[0] == "kustomize":
    os.execv(os.environ["REAL_KUBECTL"], ["kubectl", *args])
call = {"args": args}
if "-f" in args:
    call["file"] = open(args[args.index("-f") + 1]).read()
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(call) + "\\n")
if "get" in args and os.environ["FAKE_LIVE_SLOT"]:
    print(json.dumps({"spec": {"selector": {"slot": os.environ["FAKE_LIVE_SLOT"]}}}))
if "port-forward" in args:
    version = os.environ["MODEL_VERSION"]
    record = {"age": 41}
    answers = {
        "/ready": {"status": "ready", "model_version": version},
        "/openapi.json": {"paths": {"/predict": {"post": {"requestBody": {"content": {
            "application/json": {"examples": {"record": {"value": record}}}}}}}}},
        "/predict": {"request_id": "r", "model_name": "m", "model_version": version,
                     "predictions": [1], "classes": [0, 1], "probabilities": [[0.25, 0.75]]},
    }

    class Stub(BaseHTTPRequestHandler):
        def do_GET(self):
            self.answer(answers[self.path])

        def do_POST(self):
            sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.answer(answers[self.path] if sent == record else {})

        def answer(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_):
            pass

    port = int(args[args.index("port-forward") + 2].split(":")[0])
    with HTTPServer(("127.0.0.1", port), Stub) as server:
        print(f"Forwarding from 127.0.0.1:{port} -> 8000", flush=True)
        server.serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Runner:
    """A job's `run:` steps with a runner's variables, and the calls the cluster received."""

    def __init__(self, folder: Path) -> None:
        fake = folder / "bin" / "kubectl"
        fake.parent.mkdir()
        fake.write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}")
        fake.chmod(0o755)
        self.folder = folder
        self.env = {
            **os.environ,
            "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
            "REAL_KUBECTL": str(shutil.which("kubectl")),
            "FAKE_LOG": str(folder / "calls.jsonl"),
            "FAKE_LIVE_SLOT": "blue",
            "IMAGE": IMAGE,
            "MODEL_VERSION": VERSION,
            "PORT": str(_free_port()),
            "KUBE_CONFIG": "apiVersion: v1\nkind: Config\n",
            "KUBECONFIG": str(folder / "kubeconfig"),
            "GITHUB_ENV": str(folder / "github_env"),
            "GITHUB_STEP_SUMMARY": str(folder / "summary.md"),
        }

    def steps(self, job: str) -> dict[str, str]:
        """The job's `run:` steps by name, in order; `make install` has run already."""
        jobs = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
        runs = {step["name"]: step["run"] for step in jobs[job]["steps"] if "run" in step}
        assert runs.pop("Install") == "make install"
        return runs

    def run(self, script: str) -> str:
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=PROJECT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def calls(self) -> list[dict[str, Any]]:
        log = self.folder / "calls.jsonl"
        lines = log.read_text(encoding="utf-8").splitlines()
        log.unlink()
        return [json.loads(line) for line in lines]


def documents(text: str) -> list[Document]:
    return [document for document in yaml.safe_load_all(text) if document]


def test_staging_is_applied_waited_for_and_smoke_tested(
    tmp_path: Path, renderings: dict[str, list[Document]]
) -> None:
    runner = Runner(tmp_path)
    steps = runner.steps("staging")
    assert list(steps) == ["Cluster access", "Deploy", "Smoke test"]

    runner.run(steps["Cluster access"])
    kubeconfig = Path(runner.env["KUBECONFIG"])
    assert kubeconfig.read_text() == runner.env["KUBE_CONFIG"] + "\n"
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "github_env").read_text() == f"KUBECONFIG={kubeconfig}\n"

    runner.run(steps["Deploy"])
    apply, wait = runner.calls()
    assert apply["args"][:2] == ["apply", "-f"]
    assert documents(apply["file"]) == renderings["staging"]
    namespace = f"{SLUG}-staging"
    rollout = ["rollout", "status", f"deployment/{SLUG}", "--timeout=10m"]
    assert wait["args"] == ["-n", namespace, *rollout]

    said = runner.run(steps["Smoke test"])
    assert f"ready: model v{VERSION}" in said
    (forward,) = runner.calls()
    assert forward["args"][:4] == ["-n", namespace, "port-forward", f"service/{SLUG}"]


def test_production_canary_then_blue_green_then_rollback(
    tmp_path: Path, renderings: dict[str, list[Document]]
) -> None:
    runner = Runner(tmp_path)
    steps = runner.steps("production")
    # The verdict needs Prometheus: tests/delivery/test_canary.py runs it against a real one.
    analysis = "Canary analysis"
    expected = ["Cluster access", "Canary (10% of the traffic)", analysis, "Promote (blue-green)"]
    assert list(steps) == [*expected, "Roll back (the canary deleted)"]
    assert steps.pop(analysis) == "make canary-verdict WINDOW=10m ATTEMPTS=6 WAIT=300"
    runner.run(steps["Cluster access"])
    namespace = f"{SLUG}-production"

    runner.run(steps["Canary (10% of the traffic)"])
    apply, wait = runner.calls()
    assert documents(apply["file"]) == renderings["canary"]
    assert wait["args"][:5] == ["-n", namespace, "rollout", "status", f"deployment/{SLUG}-canary"]

    # Blue serves: green gets the image, is smoke-tested on its own Service, then takes the
    # traffic, and the canary goes.
    said = runner.run(steps["Promote (blue-green)"])
    assert "smoke test passed" in said
    get, apply, wait, forward, switch, _, delete = runner.calls()
    assert get["args"][:5] == ["-n", namespace, "get", "service", SLUG]
    green = render("production", IMAGE, slot="green", project=PROJECT)
    assert documents(apply["file"]) == documents(green)
    assert wait["args"][4] == f"deployment/{SLUG}-green"
    assert forward["args"][:4] == ["-n", namespace, "port-forward", f"service/{SLUG}-green"]
    assert documents(switch["file"]) == renderings["production-green-switch"]
    assert delete["args"][:1] == ["delete"]
    assert documents(delete["file"]) == renderings["canary"]
    summary = (tmp_path / "summary.md").read_text()
    assert f"{IMAGE} (model v{VERSION}) is live on the green slot" in summary

    # After a rollback verdict (or any failure): the canary deleted, and said.
    runner.run(steps["Roll back (the canary deleted)"])
    (delete,) = runner.calls()
    assert documents(delete["file"]) == renderings["canary"]
    assert f"model v{VERSION} rolled back" in (tmp_path / "summary.md").read_text()
