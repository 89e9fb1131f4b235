from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import bytecode
from blueprint import ENV, snapshot_template
from projects import (
    DEMO,
    PROJECT_ENV,
    Demo,
    build_demo,
    built_once,
    demo_from,
    locked,
    session_folder,
)

# The order the xdist workers take tests in (`--maxschedchunk 1`: each takes the next one when
# it is free). The longest first, so that both workers end together; the default project first
# of all, since a dozen tests wait for it, and the tests that wait for it after work of about its
# length, so that the second worker is busy meanwhile. Anything not named keeps its place after.
ORDER = (
    "test_end_to_end.py::test_make_demo",
    "test_pipeline.py::test_default_pipeline_promotes_a_first_champion[multiclass",
    "test_pipeline.py::test_default_pipeline_promotes_a_first_champion[regression",
    "test_pipeline.py::test_pipeline_against_an_mlflow_server",
    # Long, and they wait for the demo's project: by now the demo is built. The pipeline job
    # needs the project only to clone it, so it goes before the loop, which holds it throughout.
    "test_workflows.py::test_ci_pipeline_job_on_a_fresh_clone",
    "test_bring_your_own_data.py",
    "test_loop.py",
    "test_release.py::test_answers_that_render_nothing",
    "test_generated_projects.py",
    "test_pipeline.py::test_a_worse_model",
    "test_pipeline.py::test_bad_input",
    "test_end_to_end.py",
    "test_pipeline.py",
    "test_grow.py",
    "test_upgrades.py",
    "test_identical_trees.py",
)


def _rank(item: pytest.Item) -> int:
    nodeid = item.nodeid.removeprefix("tests/")
    return next((i for i, start in enumerate(ORDER) if nodeid.startswith(start)), len(ORDER))


# The fixtures that make and run whole projects. A test using one is marked `slow`, so that
# `make test-fast` (-m "not slow") runs none of them (one such test once took it to 8 minutes).
PROJECT_FIXTURES = {"shared", "demo", "demo_alone"}


# tryfirst: before `-m` deselects, so an unmarked test is named whatever was asked for.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked = [
        item.nodeid
        for item in items
        if PROJECT_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "mark these `slow` (they use a project fixture): " + ", ".join(unmarked)
        )
    items.sort(key=_rank)  # stable: each file's own order stays


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as it stands in the work tree, as a tagged git repo of its own."""
    return snapshot_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's projects, shared by the xdist workers (see projects.py)."""
    folder = session_folder(tmp_path_factory, "shared")
    # One mypy cache for every generated project of the session: mypy checks each entry
    # against its file's hash, so projects on the same Python reuse the analysis of the
    # libraries they share (a project's mypy: 36 s cold, 6 s on another project's cache).
    for env in (ENV, PROJECT_ENV):
        env["MYPY_CACHE_DIR"] = str(folder / "mypy-cache")
    bytecode.STORE = folder / "bytecode"  # and one store of compiled bytecode (bytecode.py)
    return folder


@pytest.fixture(scope="session")
def demo(shared: Path) -> Demo:
    """The default project made by `make demo`, for tests that only read it or serve it."""
    with locked(shared, DEMO):
        return demo_from(built_once(shared, DEMO, build_demo))


@pytest.fixture
def demo_alone(shared: Path) -> Iterator[Demo]:
    """The default project, held by this test alone: for tests that change it."""
    with locked(shared, DEMO):
        yield demo_from(built_once(shared, DEMO, build_demo))
