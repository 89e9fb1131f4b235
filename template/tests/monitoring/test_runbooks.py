"""Every alert links to its runbook: a section of the docs' operations page, which exists."""

from __future__ import annotations

import re

import yaml
from support import ROOT

# The runbook_url every alert carries: the docs site (prometheus.yml's external label) + a section.
RUNBOOK = re.compile(r"\{\{ \$externalLabels\.docs_url \}\}/operations/#([a-z0-9-]+)")


def slug(title: str) -> str:
    """A heading's anchor, as Markdown's table of contents makes it."""
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", title).strip().lower())


def alerts() -> dict[str, dict[str, str]]:
    groups = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())["groups"]
    return {
        rule["alert"]: rule["annotations"]
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }


def test_every_alert_links_to_a_section_of_the_operations_page() -> None:
    page = (ROOT / "docs" / "operations.md").read_text()
    sections = {slug(title) for title in re.findall(r"^#+ (.+)$", page, re.MULTILINE)}
    links = {
        name: RUNBOOK.fullmatch(notes.get("runbook_url", "")) for name, notes in alerts().items()
    }
    assert "PredictionLogLoss" in links
    assert [name for name, link in links.items() if link is None] == []
    assert {name: link.group(1) for name, link in links.items() if link} == {
        name: name.lower() for name in links
    }
    assert {name.lower() for name in links} <= sections
    # and the page's own links between its sections
    assert set(re.findall(r"\]\(#([a-z0-9-]+)\)", page)) <= sections


def test_prometheus_says_where_the_docs_are() -> None:
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    assert config["global"]["external_labels"]["docs_url"].startswith("http")
