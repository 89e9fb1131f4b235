"""The docs site (`make docs`) builds strictly, and its reference pages, written from the code,
hold every params.yaml key, every command and option{% if cookiecutter.include_serving %} and every route of the service{% endif %}."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from support import ROOT

from {{ cookiecutter.package_name }}.config import Params
from {{ cookiecutter.package_name }}.reference import commands, param_rows, yaml_help
{%- if cookiecutter.include_serving %}
from {{ cookiecutter.package_name }}.serving.app import api_document
{%- endif %}


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def codes(text: str) -> set[str]:
    return {html.unescape(code) for code in re.findall(r"<code>([^<]+)</code>", text)}


def yaml_keys(data: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        yield f"{prefix}{key}"
        if isinstance(value, dict):
            yield from yaml_keys(value, f"{prefix}{key}.")


def test_every_page_of_the_navigation_is_built(docs_site: Path) -> None:
    nav = yaml.safe_load((ROOT / "properdocs.yml").read_text())["nav"]

    def files(items: list[Any]) -> Iterator[str]:
        for item in items:
            for value in item.values():
                yield from files(value) if isinstance(value, list) else [value]

    built = [name for name in files(nav) if (docs_site / Path(name).with_suffix("")).is_dir()]
    assert built == [name for name in files(nav) if name != "index.md"]
    assert (docs_site / "index.html").is_file()


def test_every_params_key_is_on_the_parameters_page(docs_site: Path) -> None:
    shown = codes(page(docs_site, "reference/params"))
    keys = list(yaml_keys(yaml.safe_load((ROOT / "params.yaml").read_text())))

    def documented(key: str) -> bool:  # itself, a section of keys, or a key holding a mapping
        return any(key == s or s.startswith(f"{key}.") or key.startswith(f"{s}.") for s in shown)

    assert [key for key in keys if not documented(key)] == []
    assert [key for key, _, _ in param_rows(Params) if key not in shown] == []


def test_a_key_s_help_is_its_comment_in_params_yaml() -> None:
    helps = yaml_help(
        "serving:          # the policy\n"
        "  max_rows: 10    # records in one request\n"
        "  retention: 90   # days kept;\n"
        "                  # then deleted\n"
        "  level: INFO\n"
        "other: 1\n"
    )
    assert helps == {
        "serving": "the policy",
        "serving.max_rows": "records in one request",
        "serving.retention": "days kept; then deleted",
        "serving.level": "",
        "other": "",
    }


def test_every_command_and_option_is_on_the_command_line_page(docs_site: Path) -> None:
    text = page(docs_site, "reference/cli")
    shown = codes(text)
    missing = []
    for name, command in commands().items():
        if f'id="{name}"' not in text:
            missing.append(name)
        options = [opt for param in command.params for opt in param.opts if opt.startswith("-")]
        missing += [f"{name} {opt}" for opt in options if opt not in shown]
    assert missing == []
{%- if cookiecutter.include_serving %}


def test_every_route_is_on_the_api_page(docs_site: Path) -> None:
    shown = codes(page(docs_site, "reference/api"))
    routes = list(api_document()["paths"])
    assert "/predict" in routes
    assert [route for route in routes if route not in shown] == []
{%- endif %}
