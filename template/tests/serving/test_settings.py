"""Serving settings: params.yaml's `serving:` section (one parameter model with the
pipeline's), then env vars, validated at start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support import merge
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import ConfigError, UnknownCategories, load_params
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.settings import SettingsError, load_settings

from .conftest import PROJECT_ROOT


def test_env_overrides_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "params.yaml"
    config.write_text("serving:\n  unknown_categories: ignore\n  max_batch_rows: 50\n")
    monkeypatch.setenv("MAX_BATCH_ROWS", "7")
    monkeypatch.setenv("PREDICTION_LOG_DIR", "")
    monkeypatch.setenv("TRUSTED_TYPES", "a.B, c.D")
    settings = load_settings(config)
    assert settings.unknown_categories is UnknownCategories.IGNORE
    assert settings.max_batch_rows == 7
    assert settings.prediction_log_dir is None
    assert settings.trusted_types == ("a.B", "c.D")


def test_the_service_reads_the_project_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    params = load_params(PROJECT_ROOT / "params.yaml").serving
    settings = load_settings(PROJECT_ROOT / "params.yaml")
    assert settings.model_dump(include=set(type(params).model_fields)) == params.model_dump()


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "absent.yaml")
    assert settings.model_dir == Path("models/champion")
    assert settings.unknown_categories is UnknownCategories.REJECT


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MAX_BATCH_ROWS", "lots", "max_batch_rows"),
        ("UNKNOWN_CATEGORIES", "maybe", "unknown_categories"),
        ("PREDICTION_LOG_DURABILITY", "disk", "prediction_log_durability"),
    ],
)
def test_bad_settings_name_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=message):
        load_settings(tmp_path / "absent.yaml")


def test_refusing_unrecorded_answers_needs_the_line_written_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At `queued` the answer leaves before its line is written: nothing could be refused."""
    monkeypatch.setenv("PREDICTION_LOG_DURABILITY", "queued")
    monkeypatch.setenv("PREDICTION_LOG_ON_FAILURE", "refuse")
    with pytest.raises(SettingsError, match="prediction_log_on_failure: refuse needs"):
        load_settings(tmp_path / "absent.yaml")


@pytest.mark.parametrize("key", ["max_batch_row", "api_key"])
def test_unknown_config_key_is_refused(tmp_path: Path, key: str) -> None:
    """Only policy keys belong in params.yaml; secrets and paths are env vars."""
    config = tmp_path / "params.yaml"
    config.write_text(f"serving:\n  {key}: 5\n")
    with pytest.raises(SettingsError, match=f"serving.{key}"):
        load_settings(config)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"max_batch_row": 5}, "serving.max_batch_row"),
        ({"max_body_bytes": 10}, "serving.max_body_bytes"),
    ],
)
def test_the_pipeline_names_a_bad_serving_key(
    tmp_path: Path, change: dict[str, int], key: str
) -> None:
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(merge(raw, {"serving": change})))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_params(path)


def test_serving_policy_is_not_part_of_the_model_digest(tmp_path: Path) -> None:
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(merge(raw, {"serving": {"max_batch_rows": 3}})))
    assert load_params(path).digest() == load_params(PROJECT_ROOT / "params.yaml").digest()


def test_a_pipeline_stage_runs_with_the_serving_section(
    make_project: Callable[..., Path], contract: Contract
) -> None:
    project = make_project()
    assert "serving" in yaml.safe_load((project / "params.yaml").read_text())
    raw = project / load_params(project / "params.yaml").data.raw
    raw.parent.mkdir(parents=True, exist_ok=True)
    make_sample(contract, 300, seed=5).to_csv(raw, index=False)
    result = CliRunner().invoke(app, ["split"])
    assert result.exit_code == 0, result.output
