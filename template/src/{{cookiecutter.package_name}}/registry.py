"""The register stage: a new registry version, the promotion gate, the audit trail and the
model card (export.py writes the champion out for serving).

Every registered version gets the alias `challenger`. `champion` moves only when the gate
passes: absolute thresholds, no worse than the current champion re-scored on the same test
rows (within a tolerance), and fairness gaps within bounds. Each decision is written to the
version's tags and appended to `reports/audit.jsonl`.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from .config import Params, worse_by
from .evaluate import fairness_violations, score
from .explain import importance_table
from .schema import Column, Contract
from .tracking import use_experiment
from .train import MODEL_DESCRIPTIONS, TrainingRun

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_CARD = "model_card.md"
CONTACT = "{{ cookiecutter.author_name }} <{{ cookiecutter.author_email }}>"


@dataclass(frozen=True)
class Decision:
    model: str
    version: str
    run_id: str
    promoted: bool
    reasons: list[str]
    metrics: dict[str, float]
    fairness_gaps: dict[str, dict[str, float]]
    champion_before: str | None
    champion_metrics_now: dict[str, float] | None
    decided_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    decided_by: str = field(default_factory=lambda: _actor())

    @property
    def outcome(self) -> str:
        return "promoted" if self.promoted else "rejected"


def _actor() -> str:
    """Who ran the decision: the CI user when there is one, else the local account."""
    return os.environ.get("GITHUB_ACTOR") or getpass.getuser()


def gate_reasons(
    metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    fairness: dict[str, Any],
    contract: Contract,
    params: Params,
) -> tuple[bool, list[str]]:
    """Apply the promotion rules; every rule adds one line saying what it found."""
    gate = params.promotion.gate(contract.target.kind)
    passed = True
    reasons = []
    for name, bound in gate.min.items():
        ok = metrics[name] >= bound
        passed &= ok
        reasons.append(f"{name} {metrics[name]:.4f} {'>=' if ok else '<'} minimum {bound}")
    for name, bound in gate.max.items():
        ok = metrics[name] <= bound
        passed &= ok
        reasons.append(f"{name} {metrics[name]:.4f} {'<=' if ok else '>'} maximum {bound}")
    primary, tolerance = gate.primary_metric, params.promotion.tolerance
    if champion_metrics is None:
        reasons.append("no champion to compare with")
    else:
        new, old = metrics[primary], champion_metrics[primary]
        amount = worse_by(primary, new, old)
        ok = amount <= tolerance
        passed &= ok
        if amount <= 0:
            verdict = "as good or better"
        else:
            verdict = f"worse {'within' if ok else 'beyond'} tolerance {tolerance}"
        reasons.append(f"{primary} {new:.4f} vs champion {old:.4f} on the same test set: {verdict}")
    violations = fairness_violations(fairness, params.fairness.max_gap)
    passed &= not violations
    if violations:
        reasons += [f"fairness gap too large: {v}" for v in violations]
    elif any(entry["gaps"] for entry in fairness.values()):
        reasons.append("fairness gaps within bounds")
    else:
        reasons.append(
            f"fairness not gated: no sensitive group has {params.fairness.min_group_size} test rows"
        )
    return passed, reasons


def register_and_gate(
    run: TrainingRun,
    metrics: dict[str, float],
    fairness: dict[str, Any],
    explanation: dict[str, Any],
    test: pd.DataFrame,
    contract: Contract,
    params: Params,
    reports: Path,
) -> Decision:
    use_experiment(params.tracking.experiment_name)
    client = MlflowClient()
    name = params.registry.model_name
    tags = {
        "git_commit": run.git_commit,
        "data_hash": run.data_hash,
        "params_hash": run.params_hash,
        "task": contract.target.kind.value,
        **{f"metric.{metric}": str(value) for metric, value in metrics.items()},
    }
    version = mlflow.register_model(run.model_uri, name, tags=tags).version
    client.set_registered_model_alias(name, CHALLENGER, version)

    champion_before, champion_metrics = _rescore_champion(client, name, test, contract, params)
    passed, reasons = gate_reasons(metrics, champion_metrics, fairness, contract, params)
    if champion_metrics is None and champion_before is not None:
        reasons.append(f"champion v{champion_before} could not be re-scored; comparison skipped")
    if passed:
        client.set_registered_model_alias(name, CHAMPION, version)
    decision = Decision(
        model=name,
        version=str(version),
        run_id=run.run_id,
        promoted=passed,
        reasons=reasons,
        metrics=metrics,
        fairness_gaps={column: entry["gaps"] for column, entry in fairness.items()},
        champion_before=champion_before,
        champion_metrics_now=champion_metrics,
    )
    _record(client, decision, reports)
    card = model_card(decision, run, fairness, explanation, contract, params)
    (reports / MODEL_CARD).write_text(card)
    client.log_text(run.run_id, card, MODEL_CARD)
    return decision


def _rescore_champion(
    client: Any, name: str, test: pd.DataFrame, contract: Contract, params: Params
) -> tuple[str | None, dict[str, float] | None]:
    """The current champion's metrics on today's test rows, so both models face the same data."""
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    if champion.tags.get("task", contract.target.kind.value) != contract.target.kind.value:
        # A champion of another task kind (the project swapped tables): no common metric.
        return str(champion.version), None
    try:
        model = mlflow.sklearn.load_model(f"models:/{name}@{CHAMPION}")
        return str(champion.version), score(model, test, contract, params.evaluate.threshold)
    except (MlflowException, ValueError, KeyError, IndexError):
        # A model trained on another contract cannot read these rows: nothing to compare.
        return str(champion.version), None


def _record(client: Any, decision: Decision, reports: Path) -> None:
    """The audit trail: tags on the version, and one line in the append-only audit log."""
    for key, value in {
        "decision": decision.outcome,
        "decision_reasons": "; ".join(decision.reasons),
        "decided_at": decision.decided_at,
        "decided_by": decision.decided_by,
        "champion_before": decision.champion_before or "none",
    }.items():
        client.set_model_version_tag(decision.model, decision.version, key, value[:5000])
    reports.mkdir(parents=True, exist_ok=True)
    entry = {"event": "promotion_decision", "outcome": decision.outcome, **asdict(decision)}
    with (reports / "audit.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry, sort_keys=True) + "\n")
    (reports / "decision.json").write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")


def _allowed(column: Column) -> str:
    if column.categories is not None:
        allowed = "one of " + ", ".join(column.categories)
    elif column.min is not None or column.max is not None:
        low = "-inf" if column.min is None else f"{column.min:,.15g}"
        high = "inf" if column.max is None else f"{column.max:,.15g}"
        allowed = f"{column.type.value} in [{low}, {high}]"
    else:
        allowed = column.type.value
    return allowed + (", may be missing" if column.nullable else "")


def model_card(
    decision: Decision,
    run: TrainingRun,
    fairness: dict[str, Any],
    explanation: dict[str, Any],
    contract: Contract,
    params: Params,
) -> str:
    target = contract.target
    features = "\n".join(
        f"| {c.name} | {c.type.value} | {'yes' if c.nullable else 'no'} |"
        for c in contract.features
    )
    metric_rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(decision.metrics.items()))
    fairness_rows = "\n".join(
        f"| {column} | {gap} | {value:.4f} | {params.fairness.max_gap.get(gap, '-')} |"
        for column, entry in fairness.items()
        for gap, value in entry["gaps"].items()
    )
    sensitive = ", ".join(c.name for c in contract.sensitive) or "none"
    personal = ", ".join(contract.pii) or "none"
    reasons = "\n".join(f"- {reason}" for reason in decision.reasons)
    classes = f", classes {list(target.classes)}" if target.classes else ""
    ranges = "\n".join(f"  - {c.name}: {_allowed(c)}" for c in contract.features)
    return f"""# Model card: {decision.model} v{decision.version}

Status: **{decision.outcome}** on {decision.decided_at} by {decision.decided_by}.

## Intended use
Predicts `{target.name}` ({target.kind.value}{classes}) for one applicant from the features
below, to support a person's decision.

## Out of scope
- Fully automated decisions with legal or similarly significant effects on a person.
- Records outside the contract the model was trained on; the service refuses them:
{ranges}
- Populations or periods unlike the training data: the drift checks watch for them.

## Training data
Training data `{params.data.raw}` (MD5 `{run.data_hash}`, tracked by DVC in
`{params.data.raw}.dvc`), checked against the contract `{params.data.contract}` before
training (report: `reports/validation.md`); test share {params.split.test_size}, split seed
{params.split.seed}.

| feature | type | may be missing |
|---|---|---|
{features}

Sensitive attributes kept out of the model and used for fairness checks: {sensitive}.
Personal data (`pii: true`), never given to the model nor written raw to a log or a report:
{personal}.

## Model
`{params.model.type.value}`: {MODEL_DESCRIPTIONS[params.model.type]}; seed {params.model.seed}.

## Metrics (test set)
| metric | value |
|---|---|
{metric_rows}

## Fairness
Largest gap between groups of at least {params.fairness.min_group_size} test rows.

| attribute | gap | value | bound |
|---|---|---|---|
{fairness_rows}

## Explanations
Permutation importance on the {explanation["rows"]} test rows: how much
`{explanation["metric"]}` gets worse when one feature's values are shuffled (mean of
{explanation["repeats"]} shuffles; `reports/explanations.json`, logged with the run). Per
record, the service's `POST /explain` gives each feature's contribution to the raw output.

{importance_table(explanation)}

## Promotion decision
{reasons}

## Limitations
Metrics come from one held-out split of one data set; groups smaller than
{params.fairness.min_group_size} rows are not gated; the model has seen no data drift yet.

## Lineage
- MLflow run `{run.run_id}`, model `{run.model_uri}`
- git commit `{run.git_commit}`, parameters hash `{run.params_hash}`, data MD5 `{run.data_hash}`

## Human oversight
- The promotion gate (`params.yaml` `promotion:` and `fairness:`) decides whether a version
  becomes `champion`; the decision and its reasons are in `reports/audit.jsonl` and on the
  model version's tags. A failed or refused run never moves the champion.
- Changes to the contract, the gate and the pipeline need a code owner's review
  (`.github/CODEOWNERS`).
- The served model is the registry's `champion` alias: a person rolls back by moving the
  alias to an earlier version and exporting it (`make export-model`).

## Contact
{CONTACT}
"""
