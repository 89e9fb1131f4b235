"""Serving settings: defaults, then the `serving:` section of the config file, then env vars.

Every knob a deployment changes is an env var (twelve-factor); the config file carries the
team's policy (batch limits, unknown categories) so it is reviewed with the code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class UnknownCategories(StrEnum):
    REJECT = "reject"  # 422 naming the field and the allowed values
    IGNORE = "ignore"  # accepted and encoded as missing, like at training time


class ServingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_dir: Path = Path("models/champion")
    # A registry URI such as models:/{{ cookiecutter.project_slug }}@champion; needs mlflow (training env only).
    model_uri: str | None = None
    shadow_model_dir: Path | None = None
    unknown_categories: UnknownCategories = UnknownCategories.REJECT
    max_batch_rows: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    api_key: str | None = None
    admin_token: str | None = None
    # Types beyond the built-in allow-list that this deployment reviewed and trusts.
    trusted_types: tuple[str, ...] = ()
    prediction_log_dir: Path | None = Path("logs/predictions")
    prediction_log_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    prediction_log_backups: int = Field(default=10, ge=1)
    prediction_log_queue_size: int = Field(default=10_000, ge=1)
    log_level: str = "INFO"


class SettingsError(ValueError):
    """The serving configuration is invalid; the message names the setting."""


# env var -> settings field; only these env vars are read.
ENV_VARS: dict[str, str] = {
    "MODEL_DIR": "model_dir",
    "MODEL_URI": "model_uri",
    "SHADOW_MODEL_DIR": "shadow_model_dir",
    "UNKNOWN_CATEGORIES": "unknown_categories",
    "MAX_BATCH_ROWS": "max_batch_rows",
    "MAX_BODY_BYTES": "max_body_bytes",
    "API_KEY": "api_key",
    "ADMIN_TOKEN": "admin_token",
    "TRUSTED_TYPES": "trusted_types",
    "PREDICTION_LOG_DIR": "prediction_log_dir",
    "PREDICTION_LOG_MAX_BYTES": "prediction_log_max_bytes",
    "PREDICTION_LOG_BACKUPS": "prediction_log_backups",
    "PREDICTION_LOG_QUEUE_SIZE": "prediction_log_queue_size",
    "LOG_LEVEL": "log_level",
}


def load_settings(
    environ: Mapping[str, str] | None = None, config_path: Path | None = None
) -> ServingSettings:
    """Build settings from the config file's `serving:` section and the environment.

    The config file is `SERVING_CONFIG` (default `params.yaml`); it is optional so the serving
    image runs from env vars alone. An empty env var (e.g. `PREDICTION_LOG_DIR=`) means "unset".
    """
    environ = os.environ if environ is None else environ
    path = config_path or Path(environ.get("SERVING_CONFIG", "params.yaml"))
    values: dict[str, Any] = dict(_config_section(path))
    for var, field in ENV_VARS.items():
        if var not in environ:
            continue
        raw = environ[var].strip()
        if field == "trusted_types":
            values[field] = tuple(t.strip() for t in raw.split(",") if t.strip())
        else:
            values[field] = raw or None
    values = {k: v for k, v in values.items() if v is not None or k in _NULLABLE}
    try:
        return ServingSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(
            f"invalid serving settings ({path} `serving:` / env): {problems}"
        ) from None


_NULLABLE = {"model_uri", "shadow_model_dir", "api_key", "admin_token", "prediction_log_dir"}


def _config_section(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from None
    section = raw.get("serving", {}) if isinstance(raw, dict) else {}
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: `serving:` must be a mapping")
    return section
