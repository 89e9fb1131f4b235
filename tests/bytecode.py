"""Compiled bytecode shared between the session's generated environments.

uv installs every generated project's environment by hard links from its cache, so a package's
file in one environment is the same file (inode, size and mtime) as in every other. Python
checks a `.pyc` against its source's mtime and size, so bytecode one environment compiled is
valid in the others on the same Python: linking it across spares each new environment compiling
MLflow, DVC, Great Expectations, scikit-learn and the rest again (15-25 s of CPU each, measured).

The store is keyed by the source's inode: only the very same file can match. Where uv copies
instead of linking (another filesystem), no inode matches and nothing is shared. Python never
writes into a `.pyc` in place (it replaces it), so no environment can change another's.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# The session's store, set by conftest.py's `shared` fixture in every xdist worker.
STORE: Path | None = None
# The targets that make an environment or import most of it: sharing after each of them is
# enough (a walk of an environment costs 0.3-0.5 s, so not after every command).
HEAVY_TARGETS = frozenset({"install", "all", "test", "pipeline"})


def after(command: list[str], cwd: Path) -> None:
    """Share after a `make` of a heavy target in a project (blueprint.run and projects.sh)."""
    if command[:1] == ["make"] and HEAVY_TARGETS.intersection(command) and (cwd / ".venv").is_dir():
        share(cwd)


def share(project: Path) -> None:
    """Add the project's compiled bytecode to the store, and take what the store has."""
    if STORE is None:
        return
    STORE.mkdir(exist_ok=True)
    for site in (project / ".venv" / "lib").glob("python3.*/site-packages"):
        tag = "cpython-" + site.parent.name.removeprefix("python").replace(".", "")
        stored = {path.name for path in STORE.iterdir()}
        folders = [site]
        while folders:
            _share_folder(STORE, folders.pop(), tag, stored, folders)


def _share_folder(
    store: Path, folder: Path, tag: str, stored: set[str], folders: list[Path]
) -> None:
    sources: dict[str, int] = {}
    with os.scandir(folder) as entries:  # scandir: the inode comes with the listing, no stat
        for entry in entries:
            if entry.name.endswith(".py") and entry.is_file(follow_symlinks=False):
                sources[entry.name[:-3]] = entry.inode()
            elif entry.name != "__pycache__" and entry.is_dir(follow_symlinks=False):
                folders.append(Path(entry.path))
    if not sources:
        return
    cache = folder / "__pycache__"
    compiled = {path.name for path in cache.iterdir()} if cache.is_dir() else set()
    for stem, inode in sources.items():
        name, key = f"{stem}.{tag}.pyc", f"{inode}.{tag}.pyc"
        if name in compiled and key not in stored:
            _link(cache / name, store / key)
            stored.add(key)
        elif name not in compiled and key in stored:
            cache.mkdir(exist_ok=True)
            _link(store / key, cache / name)


def _link(source: Path, target: Path) -> None:
    with contextlib.suppress(FileExistsError):  # another worker got there first: the same file
        target.hardlink_to(source)
