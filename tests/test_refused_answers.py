"""Bad answers are refused before anything is written, by both tools, naming answer and rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blueprint import cookiecutter, copier_copy

# (answers, what the message must say)
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "slug-not-an-identifier": ({"project_slug": "9-lives"}, "project_slug '9-lives' is invalid"),
    "slug-derived-from-name": (
        {"project_name": "42 Things"},
        "project_slug '42-things' is invalid",
    ),
    "package-not-an-identifier": (
        {"package_name": "credit-risk"},
        "package_name 'credit-risk' is not a valid package name",
    ),
    "package-python-keyword": (
        {"package_name": "lambda"},
        "package_name 'lambda' is a Python keyword",
    ),
    "package-shadows-stdlib": (
        {"package_name": "json"},
        "would shadow the standard-library module 'json'",
    ),
    "derived-package-shadows-stdlib": (
        {"project_name": "Logging"},
        "would shadow the standard-library module 'logging'",
    ),
    "package-shadows-dependency": (
        {"package_name": "mlflow"},
        "would shadow the dependency 'mlflow'",
    ),
    "invalid-email": (
        {"author_email": "ml-team.example.com"},
        "author_email 'ml-team.example.com'",
    ),
    "email-without-domain-dot": ({"author_email": "me@localhost"}, "is not a valid e-mail address"),
    "empty-project-name": ({"project_name": "   "}, "project_name must not be empty"),
    "quote-in-description": (
        {"description": 'The "best" model'},
        "description must not contain double quotes or backslashes",
    ),
    "backslash-in-author": (
        {"author_name": "DOMAIN\\team"},
        "author_name must not contain double quotes or backslashes",
    ),
    "monitoring-without-serving": (
        {"include_serving": False, "include_monitoring": True, "deployment": "none"},
        "include_monitoring needs include_serving",
    ),
    "deployment-without-serving": (
        {"include_serving": False, "include_monitoring": False, "deployment": "kubernetes"},
        # The answers that work are named: `copier update -d include_serving=false` meets this.
        "deployment 'kubernetes' needs include_serving: there is no service to deploy. To leave"
        " the service out, answer include_monitoring=false, deployment=none and scale_out=none"
        " too",
    ),
    "spark-without-serving": (
        {"include_serving": False, "include_monitoring": False, "deployment": "none"}
        | {"scale_out": "spark"},
        "scale_out 'spark' needs include_serving: Spark scores with the exported model",
    ),
}


def _message(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.parametrize("case", list(REFUSED))
def test_copier_refuses(case: str, template: Path, tmp_path: Path) -> None:
    answers, rule = REFUSED[case]
    dst = tmp_path / "project"
    done = copier_copy(template, dst, answers, check=False)
    assert done.returncode != 0
    assert rule in _message(done.stderr + done.stdout)
    assert not dst.exists(), "copier left output behind"


@pytest.mark.parametrize("case", list(REFUSED))
def test_cookiecutter_refuses(case: str, template: Path, tmp_path: Path) -> None:
    answers, rule = REFUSED[case]
    out = tmp_path / "out"
    done = cookiecutter(template, out, answers, check=False)
    assert done.returncode != 0
    assert rule in _message(done.stderr + done.stdout)
    assert list(out.iterdir()) == [], "cookiecutter left output behind"


@pytest.mark.parametrize("tool", ["copier", "cookiecutter"])
def test_an_unknown_choice_is_refused(tool: str, template: Path, tmp_path: Path) -> None:
    answers = {"license": "WTFPL"}
    if tool == "copier":
        done = copier_copy(template, tmp_path / "p", answers, check=False)
        assert not (tmp_path / "p").exists()
    else:
        done = cookiecutter(template, tmp_path / "out", answers, check=False)
        assert list((tmp_path / "out").iterdir()) == []
    assert done.returncode != 0
    assert "WTFPL" in done.stderr + done.stdout
