"""Helpers the tests share: the project's files, small overrides, other task kinds."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import yaml

from {{ cookiecutter.package_name }}.yaml_model import safe_load

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).with_name("fixtures")
# The sample's contract and parameters as generated (schema.yaml and params.yaml of the
# template, included): the tests' data, whatever the project's own files say once it brings
# its own table (`infer-schema`).
SAMPLE = FIXTURES / "sample"
# One TLS context for every test client (`verify=`): httpx builds one per client otherwise,
# loading the CA bundle each time (~30 ms of CPU; ~150 clients a run), and the tests speak
# plain HTTP on loopback.
LOOPBACK_TLS = ssl.create_default_context()

# Small and fast: enough rows for every stage to have something to do, no more.
TEST_OVERRIDES: dict[str, Any] = {
    "sample": {"rows": 600, "seed": 7},
    "validation": {"min_rows": 100},
    "model": {"hist_gradient_boosting": {"max_iter": 30}},
}


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def project_params(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = safe_load((SAMPLE / "params.yaml").read_text())
    return merge(merge(raw, TEST_OVERRIDES), changes or {})


# The three targets the template's `ml_task` answer can write into schema.yaml.
TARGETS: dict[str, dict[str, Any]] = {
    "binary": {"name": "default", "kind": "binary", "classes": [0, 1]},
    "multiclass": {"name": "risk_grade", "kind": "multiclass", "classes": ["A", "B", "C", "D"]},
    "regression": {"name": "loss_amount", "kind": "regression", "min": 0},
}


def contract_file_for(kind: str, folder: Path) -> Path:
    """The project's contract with the target of another task kind."""
    raw = safe_load((SAMPLE / "schema.yaml").read_text())
    raw["target"] = TARGETS[kind]
    path = folder / f"schema_{kind}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
