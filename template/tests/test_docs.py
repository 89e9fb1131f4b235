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

SLUG = "{{ cookiecutter.project_slug }}"
# The README's sections before it became a map, each with the commands it taught: the site
# holds them all, so nothing was lost in the move (and nothing is, later).
FORMER_README: dict[str, list[str]] = {
    "First commands": [
        *("make all", "make help", "make install", "make data", "make pipeline", "make push"),
        *("make pull", "make export-model", "git add -- '*.dvc' '*.gitignore' dvc.lock reports"),
{%- if cookiecutter.include_serving %}
        *("make serve", "make bench"),
{%- endif %}
{%- if cookiecutter.deployment != "none" %}
        "make check-image",
{%- endif %}
{%- if cookiecutter.deployment == "kubernetes" %}
        *("make manifests", "make deploy"),
{%- endif %}
{%- if cookiecutter.include_monitoring %}
        "make loop-demo",
{%- endif %}
    ],
    "Pipeline stages": [
        f"{SLUG} {name}"
        for name in ("make-sample", "validate", "split", "train", "evaluate", "register")
    ],
    "Bring your own data": [f"{SLUG} infer-schema", "make data SOURCE=", "make test"],
    "Validation": ["git checkout data/raw/*.dvc && uv run dvc checkout"],
    "Promotion gate and audit": ["reports/audit.jsonl", "reports/model_card.md"],
    "DVC": [
{%- if cookiecutter.dvc_remote == "local" %}
        "dvc remote modify storage url",
{%- else %}
        "CHANGE-ME",
{%- endif %}
        "uv run dvc plots show",
    ],
    "MLflow": ["uv run mlflow ui --backend-store-uri sqlite:///mlflow.db"],
{%- if cookiecutter.include_serving %}
    "Serving": [f"{SLUG} export-model --version", f"{SLUG} predict", "make canary-verdict"],
    "Access": [f"{SLUG} make-key --role predict", "API_KEYS_FILE", "TLS_CERT_FILE"],
    "Open Inference Protocol": ["/v2/models/"],
    "Explanations": ["POST /explain"],
    "Event-driven scoring": ["make consume", "make bench-stream"],
{%- endif %}
{%- if cookiecutter.include_monitoring %}
    "The prediction log": ["make compact-log", "make trace REQUEST_ID="],
    "Drift": ["make monitor", "--fail-on-drift", "--labels"],
    "Live metrics and alerts": [
        *("make check-monitoring", "make prometheus", "make alertmanager", "make webhook"),
    ],
    "Retraining": ["make retrain", "make retrain-branch"],
    "The whole loop": ["make loop-demo"],
{%- endif %}
{%- if cookiecutter.deployment != "none" %}
    "Team stack": ["docker compose", "deploy/compose.yaml"],
{%- endif %}
{%- if cookiecutter.deployment == "kubernetes" %}
    "Kubernetes": [
        *("make deploy", "make promote", "make rollback", "make smoke-test-cluster"),
        f"{SLUG} render-manifests",
    ],
{%- endif %}
{%- if cookiecutter.ci == "github" %}
    "CI and CD": ["make compare-metrics", "make audit", "make scan-history"],
{%- endif %}
{%- if cookiecutter.deployment != "none" and cookiecutter.ci == "github" %}
    "CD": ["make release-model", "champion-promoted"],
{%- endif %}
{%- if cookiecutter.scale_out == "spark" %}
    "Scale out: Apache Spark": [f"{SLUG} predict --engine spark", "make bench-spark ROWS="],
{%- endif %}
    "Telemetry": ["MLFLOW_DISABLE_TELEMETRY", "DVC_NO_ANALYTICS", "DO_NOT_TRACK"],
    "Upgrading": ["copier update --trust", "cruft update"],
}


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


def test_the_readme_is_a_map_to_every_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    pages = {path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").glob("*.md")}
    assert {link for link in pages if f"]({link})" not in readme} == set()


def test_every_former_readme_section_s_commands_are_in_the_site(docs_site: Path) -> None:
    texts = [path.read_text(encoding="utf-8") for path in docs_site.rglob("index.html")]
    site = html.unescape(re.sub(r"<[^>]+>", "", "\n".join(texts)))
    missing = {
        section: [command for command in commands if command not in site]
        for section, commands in FORMER_README.items()
    }
    assert {section: lost for section, lost in missing.items() if lost} == {}


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
