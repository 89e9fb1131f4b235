"""The docs site's reference pages, written from the code at every build so they cannot drift.

- `params.md`: every key of params.yaml, its type and default from the `Params` model, its
  value and help from the file (the comment on its line);
- `cli.md`: every command and option of `{{ cookiecutter.project_slug }}`, from typer;
{%- if cookiecutter.include_serving %}
- `api.md`: every route of the service, from its OpenAPI document.
{%- endif %}

docs/hooks.py adds them to every build (`make docs`, `make docs-serve`): none is a file to keep
up to date.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

import typer
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .config import DEFAULT_PARAMS, Params

# `key: value  # help`, at any depth; the value may hold no `#` (none in params.yaml does).
_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?P<rest>[^#]*)(?:#\s?(?P<help>.*))?$")
_COMMENT = re.compile(r"^ +#\s?(?P<help>.*)$")


def yaml_help(text: str) -> dict[str, str]:
    """Each dotted key's comment in a YAML file: the one on its line, continued by comment
    lines right below it that are indented further than the key."""
    helps: dict[str, str] = {}
    path: list[tuple[int, str]] = []
    last: str | None = None
    for line in text.splitlines():
        if (line_match := _LINE.match(line)) is not None:
            indent = len(line_match["indent"])
            path = [(depth, key) for depth, key in path if depth < indent]
            path.append((indent, line_match["key"]))
            last = ".".join(key for _, key in path)
            helps[last] = (line_match["help"] or "").strip()
        elif last is not None and (comment := _COMMENT.match(line)) is not None:
            helps[last] = f"{helps[last]} {comment['help'].strip()}".strip()
        else:
            last = None
    return helps


def _type_name(annotation: Any) -> str:
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " | ".join(str(member.value) for member in annotation)
    if get_origin(annotation) is None:
        return getattr(annotation, "__name__", str(annotation))
    names = [_type_name(arg) for arg in args]
    origin = getattr(get_origin(annotation), "__name__", "")
    if origin in ("Union", "UnionType"):
        return " or ".join(names) + (" or null" if len(names) < len(get_args(annotation)) else "")
    return f"{origin}[{', '.join(names)}]"


def _limits(field: FieldInfo) -> str:
    words = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "min_length": "length ≥"}
    found = [
        f"{sign} {getattr(item, name)}"
        for item in field.metadata
        for name, sign in words.items()
        if getattr(item, name, None) is not None
    ]
    return f" ({', '.join(found)})" if found else ""


def _section(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def param_rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(dotted key, type, default) of every leaf field, depth first, in the model's order."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _section(field.annotation)
        if section is not None:
            yield from param_rows(section, f"{key}.")
            continue
        default = field.get_default(call_default_factory=True)
        shown = "required" if default is PydanticUndefined else f"`{_cell(_value(default))}`"
        yield key, _type_name(field.annotation) + _limits(field), shown


def _value(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    elif isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str)


def _lookup(data: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def params_page(params_file: Path = DEFAULT_PARAMS) -> str:
    text = params_file.read_text(encoding="utf-8")
    values, helps = yaml.safe_load(text), yaml_help(text)
    lines = [
        "# Parameters",
        "",
        f"Every key of `{params_file}`, loaded into the `Params` model (`config.py`), which "
        "refuses an unknown key or a bad value by name. Written from the code at each build.",
        "",
        "| key | type | default | in params.yaml | what |",
        "|---|---|---|---|---|",
    ]
    for key, kind, default in param_rows(Params):
        value = _lookup(values, key)
        here = "" if value is None else f"`{_cell(_value(value))}`"
        lines.append(
            f"| `{key}` | {_cell(kind)} | {default} | {here} | {_cell(helps.get(key, ''))} |"
        )
    return "\n".join(lines) + "\n"


def _option_row(param: Any) -> str:
    """A typer argument or option (typer's own click objects: typer vendors click)."""
    names = ", ".join(f"`{name}`" for name in (*param.opts, *param.secondary_opts))
    if param.required:
        default = "required"
    else:
        default = "" if param.default in (None, ()) else f"`{param.default}`"
    if param.envvar:
        default += f" (env `{param.envvar}`)"
    return f"| {names} | {_cell(default)} | {_cell(getattr(param, 'help', None) or '')} |"


def commands() -> dict[str, Any]:
    """The CLI's commands by name, as typer builds them."""
    from .cli import app

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)  # several commands, so a group
    return dict(sorted(group.commands.items()))


def cli_page() -> str:
    lines = [
        "# Command line",
        "",
        "Every command of `{{ cookiecutter.project_slug }}` (`uv run {{ cookiecutter.project_slug }} COMMAND --help` "
        "says the same); the Makefile's targets call them. Written from the code at each build.",
    ]
    for name, command in commands().items():
        if command.hidden:
            continue
        params = [param for param in command.params if param.name != "help"]
        arguments = [param.name.upper() for param in params if not param.opts[0].startswith("-")]
        usage = " ".join(["{{ cookiecutter.project_slug }}", name, *arguments, "[OPTIONS]"])
        lines += ["", f"## {name}", "", f"`{usage}`", "", (command.help or "").strip(), ""]
        if params:
            lines += ["| argument or option | default | what |", "|---|---|---|"]
            lines += [_option_row(param) for param in params]
    return "\n".join(lines) + "\n"
{%- if cookiecutter.include_serving %}


def api_page() -> str:
    from .serving.app import api_document

    document = api_document()
    lines = [
        "# API",
        "",
        "Every route of the service, from its OpenAPI document. A running service documents "
        "itself too, with its model's request fields and examples: `/docs` (Swagger UI, "
        "served offline) and `/openapi.json`. Written from the code at each build.",
        "",
        "| method | route | what | tag |",
        "|---|---|---|---|",
    ]
    for route, operations in document["paths"].items():
        for method, operation in operations.items():
            what = (operation.get("description") or operation.get("summary") or "").strip()
            tags = ", ".join(operation.get("tags", []))
            first = what.split("\n\n")[0]
            lines.append(f"| {method.upper()} | `{route}` | {_cell(first)} | {tags} |")
    return "\n".join(lines) + "\n"
{%- endif %}


def pages() -> dict[str, str]:
    """The reference pages by their path in the site."""
    return {
        "reference/params.md": params_page(),
        "reference/cli.md": cli_page(),
{%- if cookiecutter.include_serving %}
        "reference/api.md": api_page(),
{%- endif %}
    }
