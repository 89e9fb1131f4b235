"""Production's blue-green slots: which one the live Service sends traffic to, and so which one
gets the next image (`make promote` deploys that one, smoke-tests it, then switches to it).

The cluster, not the repository, knows which slot is live, so it is read with kubectl.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable

from .manifests import SLOTS

# The live Service (the one without a slot label) and production's namespace, as
# deploy/k8s/overlays/production names them.
LIVE_SERVICE = "{{ cookiecutter.project_slug }}"
NAMESPACE = "{{ cookiecutter.project_slug }}-production"

Kubectl = Callable[[list[str]], subprocess.CompletedProcess[str]]


class SlotError(Exception):
    """The live slot cannot be read, or is not a slot; the message says what kubectl said."""


def kubectl(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """kubectl from PATH, on the current context (KUBECONFIG)."""
    found = shutil.which("kubectl")
    if found is None:
        raise SlotError("kubectl is not on PATH")
    # kubectl from PATH, arguments are ours.
    return subprocess.run([found, *arguments], capture_output=True, text=True, check=False)  # noqa: S603


def live_slot(namespace: str = NAMESPACE, run: Kubectl | None = None) -> str | None:
    """The slot the live Service selects; None when there is no live Service yet (the first
    release). Any other failure is an error: a guess could put the image on the serving slot."""
    arguments = ["-n", namespace, "get", "service", LIVE_SERVICE, "--ignore-not-found"]
    done = (run or kubectl)([*arguments, "-o", "json"])
    if done.returncode != 0:
        raise SlotError(f"kubectl {' '.join(arguments)}: {done.stderr.strip()}")
    if not done.stdout.strip():
        return None
    try:
        slot = json.loads(done.stdout)["spec"]["selector"].get("slot")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SlotError(
            f"kubectl {' '.join(arguments)}: not a Service: {done.stdout[:200]!r}"
        ) from None
    if slot not in SLOTS:
        raise SlotError(
            f"Service {LIVE_SERVICE} in {namespace} selects slot {slot!r}, not one of "
            f"{', '.join(SLOTS)}"
        )
    return str(slot)


def idle_slot(live: str | None) -> str:
    """The slot that gets the next image: the one not live (the first, before any release)."""
    return next(slot for slot in SLOTS if slot != live)
