from __future__ import annotations

from pathlib import Path

import pytest

from blueprint import snapshot_template


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as it stands in the work tree, as a tagged git repo of its own."""
    return snapshot_template(tmp_path_factory.mktemp("template"))
