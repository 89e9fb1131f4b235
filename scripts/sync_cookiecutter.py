"""Derive cookiecutter.json from copier.yml, the single source of truth for the questions.

python scripts/sync_cookiecutter.py          # rewrite cookiecutter.json
python scripts/sync_cookiecutter.py --check  # exit 1 if cookiecutter.json is stale
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COPIER_YML = ROOT / "copier.yml"
COOKIECUTTER_JSON = ROOT / "cookiecutter.json"
# Computed in copier.yml only so that shared files can say `cookiecutter.x`; native there.
COPIER_ONLY = {"cookiecutter"}


def load_questions() -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load(COPIER_YML.read_text(encoding="utf-8"))
    return {
        name: question
        for name, question in spec.items()
        if not name.startswith("_") and name not in COPIER_ONLY
    }


def to_cookiecutter_expression(template: str, names: list[str]) -> str:
    """`{{ project_name.lower() }}` -> `{{ cookiecutter.project_name.lower() }}`."""
    bare_name = re.compile(r"(?<![\w.'\"])(" + "|".join(map(re.escape, names)) + r")\b")
    return re.sub(
        r"{{(.*?)}}", lambda m: "{{" + bare_name.sub(r"cookiecutter.\1", m[1]) + "}}", template
    )


def build(questions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    asked = [name for name, q in questions.items() if q.get("when", True) is not False]
    context: dict[str, Any] = {}
    for name in asked:
        question = questions[name]
        default = question.get("default")
        if "choices" in question:
            choices = [str(c) for c in question["choices"]]
            context[name] = [str(default), *(c for c in choices if c != str(default))]
        elif isinstance(default, str):
            context[name] = to_cookiecutter_expression(default, asked)
        else:
            context[name] = default
    context["__prompts__"] = {name: questions[name]["help"] for name in asked}
    for name, question in questions.items():
        if name not in asked:
            context[f"_{name}"] = question["default"]
    context["_validators"] = {
        name: questions[name]["validator"] for name in asked if "validator" in questions[name]
    }
    return context


def render() -> str:
    return json.dumps(build(load_questions()), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    wanted = render()
    if "--check" in argv:
        if COOKIECUTTER_JSON.read_text(encoding="utf-8") != wanted:
            print(
                "cookiecutter.json is out of date with copier.yml: run `make sync`", file=sys.stderr
            )
            return 1
        return 0
    COOKIECUTTER_JSON.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
