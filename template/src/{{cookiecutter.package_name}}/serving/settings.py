"""Serving settings: defaults, then the `serving:` section of params.yaml, then env vars.

Every knob a deployment changes is an env var (twelve-factor); the policy knobs also live in
params.yaml (`ServingParams`, the pipeline's own parameter model) so they are reviewed with
the code. The config file is `SERVING_CONFIG` (default `params.yaml`) and optional, so the
serving image runs from env vars alone. An empty env var (`PREDICTION_LOG_DIR=`) means "off".
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from ..config import ServingParams
from ..yaml_model import describe_errors


class SettingsError(ValueError):
    """The serving configuration is invalid; the message names the setting."""


class Role(StrEnum):
    """What every metric and prediction log line of a request is labelled with."""

    STABLE = "stable"
    CANARY = "canary"


class ServingSettings(ServingParams, BaseSettings):
    # Env var = field name in upper case; env vars win over params.yaml (passed as init values).
    model_config = SettingsConfigDict(extra="forbid", frozen=True, case_sensitive=False)

    model_dir: Path = Path("models/champion")
    # A registry URI such as models:/{{ cookiecutter.project_slug }}@champion; needs mlflow (training env only).
    model_uri: str | None = None
    shadow_model_dir: Path | None = None
    # A canary beside the stable model: CANARY_PERCENT of the traffic (PUT /admin/canary
    # changes it live). SERVING_ROLE=canary: this whole process is the canary (a canary
    # Deployment beside the stable one), so its MODEL_DIR is the canary model.
    canary_model_dir: Path | None = None
    canary_percent: float = Field(default=0, ge=0, le=100)
    serving_role: Role = Role.STABLE
    # API keys (serving/auth.py): one key each from the environment, any number hashed in
    # API_KEYS_FILE (a file or a folder of files, `role:sha256hex` lines).
    api_key: str | None = None
    admin_token: str | None = None
    metrics_token: str | None = None
    api_keys_file: Path | None = None
    # Where the server (serving/server.py) listens; TLS when both files are set.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    tls_cert_file: FilePath | None = None
    tls_key_file: FilePath | None = None
    prediction_log_dir: Path | None = Path("logs/predictions")
    # The key of the personal-data hashes in the prediction log (pii.py); unset: dropped.
    pii_hash_key: SecretStr | None = None
    trusted_types: Annotated[tuple[str, ...], NoDecode] = ()  # TRUSTED_TYPES=a,b

    @field_validator(
        "model_uri",
        "shadow_model_dir",
        "canary_model_dir",
        "api_key",
        "admin_token",
        "metrics_token",
        "api_keys_file",
        "tls_cert_file",
        "tls_key_file",
        "prediction_log_dir",
        "pii_hash_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("trusted_types", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @model_validator(mode="after")
    def _one_canary(self) -> Self:
        if self.serving_role is Role.CANARY and self.canary_model_dir is not None:
            raise ValueError(
                "canary_model_dir: SERVING_ROLE=canary serves MODEL_DIR as the canary; "
                "CANARY_MODEL_DIR belongs to a stable process"
            )
        if self.canary_percent > 0 and self.canary_model_dir is None:
            raise ValueError(
                f"canary_percent: {self.canary_percent:g}% of the traffic needs a canary model "
                "(CANARY_MODEL_DIR)"
            )
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file: TLS needs both TLS_CERT_FILE and TLS_KEY_FILE")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings


def load_settings(config_path: Path | None = None) -> ServingSettings:
    """Settings from the config file's `serving:` section and the environment."""
    path = config_path or Path(os.environ.get("SERVING_CONFIG", "params.yaml"))
    try:
        return ServingSettings(**_serving_section(path))
    except ValidationError as exc:
        raise SettingsError(
            f"invalid serving settings ({path} `serving:` / env): {describe_errors(exc)}"
        ) from None


def _serving_section(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from None
    section = raw.get("serving") or {} if isinstance(raw, dict) else {}
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: `serving:` must be a mapping")
    # Only the policy keys: deployment settings (MODEL_DIR, API_KEY...) come from env vars.
    unknown = sorted(set(section) - set(ServingParams.model_fields))
    if unknown:
        raise SettingsError(f"{path}: serving.{unknown[0]}: unknown key")
    return section
