from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support import FIXTURES, ROOT, merge
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import ConfigError, load_params


def test_project_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.registry.model_name
    assert len(params.digest()) == 16


def test_valid_fixture_loads() -> None:
    assert load_params(FIXTURES / "params_valid.yaml").model.type.value == "linear"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"model": {"type": "random_forest"}}, "model.type"),
        ({"split": {"test_size": 1.5}}, "split.test_size"),
        ({"sample": {"rows": "many"}}, "sample.rows"),
        ({"promotion": {"binary": {"primary_metric": "rmse"}}}, "unknown metric 'rmse'"),
        ({"validation": {"mean_bounds": {"age": [60, 25]}}}, "mean_bounds.age"),
        ({"registry": {"model_name": ""}}, "registry.model_name"),
        ({"tracking": {"experiment": "x"}}, "tracking.experiment"),
    ],
)
def test_invalid_params_name_the_key(change: dict[str, Any], key: str, tmp_path: Path) -> None:
    raw = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), change)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_params(path)


def test_missing_section_is_named() -> None:
    with pytest.raises(ConfigError, match="registry: Field required"):
        load_params(FIXTURES / "params_missing_section.yaml")


def test_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(path)


def test_cli_reports_broken_params_in_one_line_and_exits_non_zero() -> None:
    result = CliRunner().invoke(
        app, ["split", "--params", str(FIXTURES / "params_missing_section.yaml")]
    )
    assert result.exit_code == 1
    assert "registry: Field required" in result.stderr
    assert "Traceback" not in result.output
