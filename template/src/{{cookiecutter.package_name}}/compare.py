"""`compare-metrics`: the ML CI's check that a change does not make the model worse.

It reads `dvc metrics diff --json` (this work tree against a base revision) and applies the
promotion gate's own rule (`config.worse_by` on the gate's primary metric, within its
tolerance), so CI and the registry cannot disagree about what "worse" means. The verdict and
the whole table go out as Markdown, for a pull request's job summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .config import LOWER_IS_BETTER, Params, worse_by
from .schema import Contract

METRICS_FILE = "reports/metrics.json"


class CompareError(ValueError):
    """The diff cannot be read or lacks the gate's metric; the message says which."""


@dataclass(frozen=True)
class Change:
    metric: str
    old: float | None  # None: the base revision has no value (a new metric, a first pipeline)
    new: float | None


@dataclass(frozen=True)
class Comparison:
    base: str
    changes: list[Change]
    primary: str
    tolerance: float

    @property
    def gated(self) -> Change:
        return next(change for change in self.changes if change.metric == self.primary)

    @property
    def loss(self) -> float | None:
        """How much worse the gate's metric got (negative: better); None without a baseline."""
        change = self.gated
        if change.old is None or change.new is None:
            return None
        return worse_by(self.primary, change.new, change.old)

    @property
    def worse(self) -> bool:
        amount = self.loss
        return amount is not None and amount > self.tolerance


def dvc_metrics_diff(base: str) -> dict[str, Any]:
    """`dvc metrics diff --json --all BASE`: every metric, changed or not, of every file."""
    command = [sys.executable, "-m", "dvc", "metrics", "diff", "--json", "--all", base]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our interpreter, fixed arguments
    if done.returncode != 0:
        raise CompareError(
            f"`dvc metrics diff {base}` failed (exit {done.returncode}): {done.stderr.strip()}"
        )
    return parse_diff(done.stdout, f"`dvc metrics diff {base}`")


def parse_diff(text: str, source: str) -> dict[str, Any]:
    try:
        document = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise CompareError(f"{source} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CompareError(f"{source}: expected a JSON object of metrics files")
    return document


def changes_in(document: dict[str, Any], metrics_file: str) -> list[Change]:
    """The metrics of one file in a `dvc metrics diff --json` document."""
    entries = document.get(metrics_file, {})
    if not isinstance(entries, dict):
        raise CompareError(f"{metrics_file}: expected an object of metrics in the diff")
    changes = []
    for metric, values in sorted(entries.items()):
        if not isinstance(values, dict):
            raise CompareError(f"{metrics_file}: {metric}: expected old and new values")
        changes.append(Change(metric, _number(values.get("old")), _number(values.get("new"))))
    return changes


def _number(value: Any) -> float | None:
    # DVC writes null for a side that has no value; anything else but a number is garbage.
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def compare(
    document: dict[str, Any], metrics_file: str, primary: str, tolerance: float, base: str
) -> Comparison:
    changes = changes_in(document, metrics_file)
    found = {change.metric: change for change in changes}
    if primary not in found or found[primary].new is None:
        raise CompareError(
            f"{metrics_file} has no {primary} in this work tree (the promotion gate's metric): "
            "run the pipeline (dvc repro) first"
        )
    return Comparison(base, changes, primary, tolerance)


def by_the_gate(document: dict[str, Any], params: Params, base: str) -> Comparison:
    """The metrics file's changes judged by the promotion gate's metric and tolerance."""
    gate = params.promotion.gate(Contract.load(params.data.contract).target.kind)
    return compare(document, METRICS_FILE, gate.primary_metric, params.promotion.tolerance, base)


def markdown(comparison: Comparison) -> str:
    """The table and the verdict, as a pull request's job summary shows them."""
    base, primary = comparison.base, comparison.primary
    rows = [
        f"| {_name(change, primary)} | {_value(change.old)} | {_value(change.new)} "
        f"| {_delta(change)} |"
        for change in comparison.changes
    ]
    direction = "lower" if primary in LOWER_IS_BETTER else "higher"
    amount = comparison.loss
    if amount is None:
        verdict = f"{base} has no `{primary}` to compare with: nothing to gate."
    elif comparison.worse:
        verdict = (
            f"**Worse than {base}:** `{primary}` lost {amount:.4f}, beyond the promotion "
            f"gate's tolerance {comparison.tolerance} ({direction} is better)."
        )
    else:
        verdict = (
            f"Not worse than {base}: `{primary}` "
            + (f"lost {amount:.4f}, within" if amount > 0 else "held or improved, within")
            + f" the promotion gate's tolerance {comparison.tolerance} ({direction} is better)."
        )
    return "\n".join(
        [
            f"### Metrics against {base} (dvc metrics diff)",
            "",
            f"| metric | {base} | this change | change |",
            "|---|---|---|---|",
            *rows,
            "",
            verdict,
            "",
        ]
    )


def _name(change: Change, primary: str) -> str:
    return f"**{change.metric}** (gate)" if change.metric == primary else change.metric


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _delta(change: Change) -> str:
    if change.old is None or change.new is None:
        return "-"
    return f"{change.new - change.old:+.4f}"
