"""The drift report in three forms: JSON for machines, Markdown for a pull request, and one
self-contained HTML page whose plots are inline SVG: no script, no stylesheet or font from
anywhere, so it opens offline and loads nothing.

Each renders the dict `monitor.monitor` returns, whose checks are already in report order
(drift first).
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

VERDICTS = {
    "drift": "Drift detected",
    "no_drift": "No drift",
    "no_traffic": "No traffic in window",
}
# The order statistics are shown in, after the deciding one; the Markdown table stops at
# missing_rate_change.
_ORDER = (
    "psi",
    "ks",
    "ks_p_value",
    "wasserstein",
    "chi2",
    "chi2_p_value",
    "jensen_shannon",
    "unseen_share",
    "missing_rate_change",
    "missing_rate_reference",
    "missing_rate_current",
)
_BRIEF = _ORDER.index("missing_rate_change") + 1


def write_reports(report: dict[str, Any], directory: Path) -> list[Path]:
    """drift.json, drift.md and drift.html in `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / name for name in ("drift.json", "drift.md", "drift.html")]
    texts = (to_json(report), to_markdown(report), to_html(report))
    for path, text in zip(paths, texts, strict=True):
        path.write_text(text, encoding="utf-8")
    return paths


def to_json(report: dict[str, Any]) -> str:
    # NaN (a statistic with nothing to compare) is not JSON: it is written as null.
    return json.dumps(_finite(report), indent=2, sort_keys=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        # Sums (KPIs, chi-square) in full, with thousands marked; shares and p-values in 4 digits.
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    return str(value)


def _ordered(check: dict[str, Any], names: tuple[str, ...] = _ORDER) -> list[str]:
    """The check's statistics among `names` (and any not listed), the deciding one first."""
    statistics = check["statistics"]
    listed = [check["decided_by"], *names]
    if names is _ORDER:
        listed += list(statistics)
    return list(dict.fromkeys(name for name in listed if name in statistics))


def _summary(check: dict[str, Any]) -> str:
    statistics = check["statistics"]
    # Distributions have many statistics: the table keeps the main ones.
    names = _ordered(check, _ORDER[:_BRIEF]) if check["histogram"] else _ordered(check)
    return ", ".join(f"{name} {_number(statistics[name])}" for name in names)


def _window_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    window = report["window"]
    others = window["other_versions"]
    return [
        ("model", f"{report['model_name']} v{report['model_version']}"),
        (
            "window",
            f"{window['since'] or 'start'} to {window['until'] or 'now'}"
            + (f", last {window['last']} requests" if window["last"] else ""),
        ),
        ("requests", _number(window["requests"])),
        ("rows of this version", _number(window["rows"])),
        (
            "rows of other versions (not compared)",
            ", ".join(f"v{v}: {n}" for v, n in others.items()) or "none",
        ),
        ("corrupt log lines skipped", _number(window["corrupt_lines"])),
        ("reference", f"{report['reference']['source']}, {report['reference']['rows']} rows"),
    ]


def to_markdown(report: dict[str, Any]) -> str:
    verdict = report["verdict"]
    lines = [f"# Drift report: {VERDICTS[verdict]}", ""]
    if report["drifted_features"]:
        lines += [f"Drifted features: {', '.join(report['drifted_features'])}", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in _window_lines(report)]
    lines += ["", "## Checks", "", "| check | kind | verdict | decided by | statistics |"]
    lines.append("|---|---|---|---|---|")
    for check in report["checks"]:
        lines.append(
            f"| {check['name']} | {check['kind']} ({check['type']}) | {check['status']} | "
            f"{check['decided_by']} | {_summary(check)} |"
        )
    concept = report["concept"]
    if concept is not None:
        lines += ["", "## Labels", ""]
        lines.append(
            f"{concept['matched']} of {concept['rows']} labels joined ({concept['labels']}); "
            f"{concept['unknown_request_ids']} name a request id not in the window."
        )
        if concept["why_no_metrics"]:
            lines += ["", f"No live metrics: {concept['why_no_metrics']}"]
        metrics = concept["metrics"] or {}
        if metrics:
            lines += ["", "| metric | live | champion (test) |", "|---|---|---|"]
            champion = concept["champion_metrics"]
            lines += [
                f"| {name} | {_number(value)} | {_number(champion.get(name))} |"
                for name, value in metrics.items()
            ]
        if concept["kpis"]:
            lines += ["", "| KPI | sum | mean |", "|---|---|---|"]
            lines += [
                f"| {name} | {_number(kpi['sum'])} | {_number(kpi['mean'])} |"
                for name, kpi in concept["kpis"].items()
            ]
    return "\n".join(lines) + "\n"


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
h1{margin:.2rem 0}.verdict{padding:.8rem 1rem;border-radius:6px;color:#fff}
.v-drift{background:#b3261e}.v-no_drift{background:#1e7b34}.v-no_traffic{background:#6b6b6b}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .6rem;text-align:left;
border-bottom:1px solid #ddd}section{border:1px solid #ccc;border-radius:6px;padding:.6rem 1rem;
margin:1rem 0}section.drift{border-color:#b3261e;border-width:2px}.badge{font-size:.8rem;
padding:.1rem .5rem;border-radius:9px;color:#fff;background:#6b6b6b}.drift .badge{background:
#b3261e}.ok .badge{background:#1e7b34}svg text{font-size:10px;fill:#333}
.ref{fill:#8aa4c8}.cur{fill:#e08a3c}.unseen{fill:#b3261e}
"""


def to_html(report: dict[str, Any]) -> str:
    verdict = report["verdict"]
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>"
        for name, value in _window_lines(report)
    )
    drifted = ", ".join(report["drifted_features"]) or "none"
    sections = "".join(_section(check) for check in report["checks"])
    concept = _concept_html(report["concept"]) if report["concept"] is not None else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        # Nothing may load: the page is opened from a laptop or a CI artifact, offline.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<title>Drift report: {escape(VERDICTS[verdict])}</title><style>{_STYLE}</style>"
        f"</head><body><div class='verdict v-{verdict}' id='verdict'>"
        f"<h1>{escape(VERDICTS[verdict])}</h1>Drifted features: {escape(drifted)}</div>"
        f"<table>{rows}</table>{concept}<h2>Checks</h2>{sections}</body></html>\n"
    )


def _section(check: dict[str, Any]) -> str:
    flags = check["checks"]
    statistics = "".join(
        f"<tr><th>{escape(name)}</th><td>{_number(check['statistics'][name])}</td><td>"
        f"{'drift' if flags.get(name) else ''}"
        f"{' (decides)' if name == check['decided_by'] else ''}</td></tr>"
        for name in _ordered(check)
    )
    decided = f"decided by {escape(check['decided_by'])}"
    plot = _svg(check["histogram"], check["name"]) if check["histogram"] else ""
    return (
        f"<section class='check {check['status']}' data-name='{escape(check['name'])}' "
        f"data-status='{check['status']}'><h3>{escape(check['name'])} "
        f"<span class='badge'>{escape(check['status'])}</span></h3>"
        f"<p>{escape(check['kind'])}, {escape(check['type'])}; {decided}</p>"
        f"<table>{statistics}</table>{plot}</section>"
    )


def _svg(histogram: dict[str, Any], name: str) -> str:
    """Reference and current shares per bin as paired bars."""
    labels = histogram["labels"]
    if not labels:
        return ""
    width, height, top, bottom, left = 760, 240, 20, 80, 40
    plot_height = height - top - bottom
    step = (width - left - 60) / len(labels)  # room on the right for the last label
    bar = step * 0.4
    peak = max([*histogram["reference"], *histogram["current"], 1e-9])
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='{escape(name)}: reference and current shares'>",
        f"<line x1='{left}' y1='{top + plot_height}' x2='{width}' y2='{top + plot_height}' "
        "stroke='#999'/>",
        f"<text x='0' y='{top + 4}'>{peak * 100:.0f}%</text>",
        f"<rect class='ref' x='{width - 170}' y='2' width='10' height='10'/>"
        f"<text x='{width - 155}' y='11'>reference</text>"
        f"<rect class='cur' x='{width - 90}' y='2' width='10' height='10'/>"
        f"<text x='{width - 75}' y='11'>current</text>",
    ]
    for i, label in enumerate(labels):
        x = left + i * step
        for offset, share, css in (
            (0.1, histogram["reference"][i], "ref"),
            (0.5, histogram["current"][i], "unseen" if histogram["unseen"][i] else "cur"),
        ):
            h = plot_height * share / peak
            parts.append(
                f"<rect class='{css}' x='{x + step * offset:.1f}' y='{top + plot_height - h:.1f}'"
                f" width='{bar:.1f}' height='{h:.1f}'><title>{escape(label)}: {css} "
                f"{share * 100:.1f}%</title></rect>"
            )
        ty = top + plot_height + 12
        parts.append(
            f"<text transform='translate({x + step / 2:.1f},{ty}) rotate(35)'>"
            f"{escape(label[:18])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _concept_html(concept: dict[str, Any]) -> str:
    metrics = concept["metrics"] or {}
    champion = concept["champion_metrics"]
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{_number(value)}</td>"
        f"<td>{_number(champion.get(name))}</td></tr>"
        for name, value in metrics.items()
    )
    kpis = "".join(
        f"<tr><th>{escape(name)}</th><td>{_number(kpi['sum'])}</td><td>{_number(kpi['mean'])}"
        "</td></tr>"
        for name, kpi in concept["kpis"].items()
    )
    why = concept["why_no_metrics"]
    return (
        f"<h2>Labels</h2><p>{concept['matched']} of {concept['rows']} labels joined; "
        f"{concept['unknown_request_ids']} name a request id not in the window.</p>"
        + (f"<p>No live metrics: {escape(why)}</p>" if why else "")
        + (
            f"<table><tr><th>metric</th><th>live</th><th>champion (test)</th></tr>{rows}</table>"
            if rows
            else ""
        )
        + (f"<table><tr><th>KPI</th><th>sum</th><th>mean</th></tr>{kpis}</table>" if kpis else "")
    )
