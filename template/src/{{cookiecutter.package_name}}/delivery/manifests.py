"""The Kubernetes manifests CD applies: an overlay of deploy/k8s (or deploy/kserve) rendered by
`kubectl kustomize` with the image set.

The overlay is not edited: a temporary kustomization references it and sets the image with
kustomize's own `images:`, so what is applied is exactly what kustomize makes of the committed
files plus the one build to run. For production (blue-green) it also keeps one slot: the
image goes to that slot, the other slot's objects are left out so applying never touches the
slot that serves, and the live Service is switched to the slot only when asked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The image every manifest names; kustomize's `images:` replaces it with the real one.
PLACEHOLDER_IMAGE = "ghcr.io/OWNER/{{ cookiecutter.project_slug }}"
OVERLAYS = {
    "staging": Path("deploy/k8s/overlays/staging"),
    "production": Path("deploy/k8s/overlays/production"),
    "canary": Path("deploy/k8s/overlays/canary"),
    "kserve": Path("deploy/kserve"),
}
BLUE_GREEN = "production"
SLOTS = ("blue", "green")

# An image reference as registries read it: name (a registry's port only before a `/`),
# then a tag, a digest or both.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?P<name>[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+(?=/))?(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?"
)

# A patch that removes whatever its target selects (kustomize reads neither kind nor name).
_DELETE = "$patch: delete\napiVersion: v1\nkind: Any\nmetadata:\n  name: any\n"


class ManifestError(Exception):
    """The manifests cannot be rendered; the message names the input at fault."""


@dataclass(frozen=True)
class Image:
    name: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, reference: str) -> Image:
        """A pinned image reference: a tag other than `latest`, or a digest."""
        match = _IMAGE.fullmatch(reference)
        if match is None:
            raise ManifestError(f"--image {reference!r}: not an image reference (name:tag)")
        image = cls(match["name"], match["tag"], match["digest"])
        if image.digest is None and image.tag in (None, "latest"):
            raise ManifestError(
                f"--image {reference!r}: give a tag other than `latest` or a digest, so a "
                "rollout (and its rollback) names one build"
            )
        return image

    def kustomize(self) -> dict[str, str]:
        """This image as an entry of kustomize's `images:`."""
        entry = {"name": PLACEHOLDER_IMAGE, "newName": self.name}
        if self.tag is not None:
            entry["newTag"] = self.tag
        if self.digest is not None:
            entry["digest"] = self.digest
        return entry


def render(
    overlay: str,
    image: str,
    *,
    slot: str | None = None,
    switch: bool = False,
    project: Path = Path(),
) -> str:
    """The overlay's manifests (multi-document YAML) with `image` set.

    `slot` (production only) is the blue-green slot that gets the image; with `switch` the live
    Service sends traffic to it, otherwise the live Service is left out of the output.
    """
    if overlay not in OVERLAYS:
        raise ManifestError(f"overlay {overlay!r}: unknown; one of {', '.join(OVERLAYS)}")
    directory = project / OVERLAYS[overlay]
    if not (directory / "kustomization.yaml").is_file():
        raise ManifestError(
            f"overlay {overlay!r}: {directory}/kustomization.yaml is missing (run from the "
            "project's root)"
        )
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "images": [Image.parse(image).kustomize()],
        "patches": _slot_patches(overlay, slot, switch),
    }
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ManifestError(
            "kubectl is not on PATH: rendering runs `kubectl kustomize` (install kubectl, "
            "which has kustomize built in)"
        )
    with tempfile.TemporaryDirectory(prefix="render-manifests-") as scratch:
        # kustomize takes a relative path to another kustomization, never an absolute one.
        kustomization["resources"] = [os.path.relpath(directory.resolve(), scratch)]
        (Path(scratch) / "kustomization.yaml").write_text(
            yaml.safe_dump(kustomization, sort_keys=False), encoding="utf-8"
        )
        done = subprocess.run(  # noqa: S603 - kubectl from PATH, arguments are ours
            [kubectl, "kustomize", scratch], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise ManifestError(f"kubectl kustomize {directory}: {done.stderr.strip()}")
    return done.stdout


def _slot_patches(overlay: str, slot: str | None, switch: bool) -> list[dict[str, Any]]:
    """Production: leave the other slot out; switch the live Service or leave it out too."""
    if overlay != BLUE_GREEN:
        if slot is not None or switch:
            raise ManifestError(f"--slot and --switch are for {BLUE_GREEN} (blue-green) only")
        return []
    if slot not in SLOTS:
        given = "missing" if slot is None else f"{slot!r} is not a slot"
        raise ManifestError(
            f"--slot: {given}; {BLUE_GREEN} is blue-green, and --slot {'|'.join(SLOTS)} names "
            "the slot that gets the image"
        )
    (other,) = (name for name in SLOTS if name != slot)
    # The live Service is the one without a slot label (kustomize matches a target's name
    # against the names before nameSuffix too, which would catch the slots' Services).
    live = {"kind": "Service", "labelSelector": "!slot"}
    patches = [{"target": {"labelSelector": f"slot={other}"}, "patch": _DELETE}]
    if switch:
        select = f"- op: replace\n  path: /spec/selector/slot\n  value: {slot}\n"
        patches.append({"target": live, "patch": select})
    else:
        patches.append({"target": live, "patch": _DELETE})
    return patches
