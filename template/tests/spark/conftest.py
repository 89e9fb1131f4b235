"""The serving tests' exported champion (kept in pytest's cache) for the Spark tests."""

from __future__ import annotations

from serving.conftest import export_dir  # noqa: F401 - the fixture, shared
