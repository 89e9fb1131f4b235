"""Every alert links to its runbook: a section of the docs site's operations page, built."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from support import ROOT

# The runbook_url every alert carries: the docs site (prometheus.yml's external label) + a section.
RUNBOOK = re.compile(r"\{\{ \$externalLabels\.docs_url \}\}/operations/#([a-z0-9-]+)")


def alerts() -> dict[str, dict[str, str]]:
    groups = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())["groups"]
    return {
        rule["alert"]: rule["annotations"]
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }


def test_every_alert_links_to_a_section_of_the_operations_page(docs_site: Path) -> None:
    page = (docs_site / "operations" / "index.html").read_text(encoding="utf-8")
    sections = set(re.findall(r'<h[1-6] id="([^"]+)"', page))
    links = {
        name: RUNBOOK.fullmatch(notes.get("runbook_url", "")) for name, notes in alerts().items()
    }
    assert "PredictionLogLoss" in links
    assert [name for name, link in links.items() if link is None] == []
    anchors = {name: link.group(1) for name, link in links.items() if link}
    assert anchors == {name: name.lower() for name in links}
    assert [name for name, anchor in anchors.items() if anchor not in sections] == []


def test_prometheus_says_where_the_docs_are() -> None:
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    assert config["global"]["external_labels"]["docs_url"] == "http://127.0.0.1:8002"
