"""MLflow set-up and lineage facts (git commit, data hash and time, environment).

Embedded by default: a SQLite store `mlflow.db` and artifacts in `mlruns/`, both in the
project. Set MLFLOW_TRACKING_URI to use a tracking server instead; no code changes.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import mlflow

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# Versions recorded with each run and pinned in the logged model's requirements.
MODEL_PACKAGES = ("scikit-learn", "skops", "numpy", "mlflow")
RECORDED_PACKAGES = (*MODEL_PACKAGES, "pandas", "great-expectations", "fairlearn", "dvc")


def tracking_uri() -> str:
    # Empty is unset: a workflow passes an unset secret as "" (MLflow would take a file store).
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def use_experiment(name: str) -> str:
    """Point MLflow at the store and the named experiment; return the experiment id."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        experiment_id: str = experiment.experiment_id
    else:
        experiment_id = mlflow.create_experiment(name, artifact_location=_artifact_location(uri))
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _artifact_location(uri: str) -> str | None:
    """Artifacts of a local SQLite store live in `mlruns/` next to it; a server decides its own."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    return (database.resolve().parent / "mlruns").as_uri()


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH is the user's git
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


def file_md5(path: str | Path) -> str:
    """The file's MD5, the same value DVC records for it in its .dvc file and dvc.lock."""
    digest = hashlib.md5()  # noqa: S324 - a content fingerprint, as DVC uses, not security
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_modified(path: str | Path) -> str:
    """When the file was last written (UTC, ISO 8601): the age the service reports for the
    data a model learnt from."""
    return datetime.fromtimestamp(Path(path).stat().st_mtime, UTC).isoformat()


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def model_requirements() -> list[str]:
    """Exact pins for the logged model; giving them saves MLflow's slow requirement inference."""
    versions = package_versions(MODEL_PACKAGES)
    return [f"{name}=={versions[name]}" for name in MODEL_PACKAGES]
