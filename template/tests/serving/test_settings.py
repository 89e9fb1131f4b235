"""Serving settings: config file `serving:` section, then env vars, validated at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.serving.settings import SettingsError, UnknownCategories, load_settings


def test_env_overrides_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "params.yaml"
    config.write_text("serving:\n  unknown_categories: ignore\n  max_batch_rows: 50\n")
    settings = load_settings({"MAX_BATCH_ROWS": "7", "PREDICTION_LOG_DIR": ""}, config)
    assert settings.unknown_categories is UnknownCategories.IGNORE
    assert settings.max_batch_rows == 7
    assert settings.prediction_log_dir is None


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    settings = load_settings({}, tmp_path / "absent.yaml")
    assert settings.model_dir == Path("models/champion")
    assert settings.unknown_categories is UnknownCategories.REJECT


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MAX_BATCH_ROWS": "lots"}, "max_batch_rows"),
        ({"UNKNOWN_CATEGORIES": "maybe"}, "unknown_categories"),
    ],
)
def test_bad_settings_name_the_setting(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ, tmp_path / "absent.yaml")


def test_unknown_config_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "params.yaml"
    config.write_text("serving:\n  max_batch_row: 5\n")
    with pytest.raises(SettingsError, match="max_batch_row"):
        load_settings({}, config)
