"""One `monitor` run: the champion's reference against a window of the prediction log.

The window is read once, a chunk at a time. Rows the champion served feed the feature and
prediction checks; rows of other model versions are counted apart (`window.other_versions`),
never mixed in. With a labels file, its rows are joined on (request_id, row) as the chunks
pass, and the task kind's metrics (evaluate.py's) are set beside the champion's test metrics.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import LOWER_IS_BETTER, DriftParams, Params
from ..data import DataError, read_table
from ..schema import Column, ColumnType, Contract, TaskKind
from ..serving.model_store import load_model_dir
from .drift import DriftAccumulator, FeatureDrift, category_key
from .log_store import compact, read_log
from .reference import Reference, load_reference

JOIN_KEYS = ["request_id", "row"]


def monitor(
    params: Params,
    model_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    last: int | None = None,
    labels: Path | None = None,
) -> dict[str, Any]:
    """The drift report as a JSON-ready dict (see report.py for its renderings)."""
    since = default_since(params, since, until, last)
    counts = DriftCounts.start(params, model_dir)
    contract = counts.reference.contract
    concept = _LabelJoin(labels, contract) if labels is not None else None
    log = params.monitoring.log
    # Rotated JSONL segments become Parquet first (faster to read), and the retention applies.
    compact(log.directory, contract, log.retention_days)
    window = read_log(log.directory, contract, since=since, until=until, last=last)
    for chunk in window.chunks():
        served = chunk[chunk["model_version"].astype(str) == counts.reference.version]
        counts.update(served)
        if concept is not None:
            concept.update(chunk, served)
    summary = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "last": last,
        "requests": window.requests,
        "corrupt_lines": window.corrupt_lines,
    }
    concept_parts = concept.report(counts.reference, params) if concept is not None else None
    return drift_report(counts, summary, window.versions, concept_parts)


def default_since(
    params: Params, since: datetime | None, until: datetime | None, last: int | None
) -> datetime | None:
    """No window given: the last monitoring.drift.window_hours."""
    if since is None and until is None and last is None:
        return datetime.now(UTC) - timedelta(hours=params.monitoring.drift.window_hours)
    return since


@dataclass
class DriftCounts:
    """What a window is counted into: the champion's features and predictions against its
    reference. Counted in parts (chunks, or a cluster's partitions) and merged."""

    reference: Reference
    features: DriftAccumulator
    predictions: _PredictionChecks

    @classmethod
    def start(cls, params: Params, model_dir: Path) -> DriftCounts:
        reference = load_reference(model_dir, params)
        drift = params.monitoring.drift
        features = DriftAccumulator(reference.table, reference.contract.features, drift)
        return cls(reference, features, _PredictionChecks(reference, model_dir, drift))

    def update(self, served: pd.DataFrame) -> None:
        """Count rows the champion served."""
        self.features.update(served)
        self.predictions.update(served)

    def merge(self, other: DriftCounts) -> None:
        self.features.merge(other.features)
        self.predictions.merge(other.predictions)


def drift_report(
    counts: DriftCounts,
    window: dict[str, Any],
    versions: dict[str, int],
    concept: tuple[dict[str, Any], dict[str, Any]] | None,
) -> dict[str, Any]:
    """The statistics and the verdict from the counts; `window` says which window it was."""
    reference = counts.reference
    drift = counts.features.params
    rows = versions.get(reference.version, 0)
    checks = [_feature_entry(r, "feature") for r in counts.features.results()]
    checks += counts.predictions.entries()
    concept_report = None
    if concept is not None:
        concept_report, concept_entry = concept
        checks.append(concept_entry)
    checks.sort(key=_order)
    drifted = [c["name"] for c in checks if c["kind"] == "feature" and c["status"] == "drift"]
    if rows == 0:
        verdict = "no_traffic"
    else:
        verdict = "drift" if any(c["status"] == "drift" for c in checks) else "no_drift"
    return {
        "verdict": verdict,
        "generated_at": datetime.now(UTC).isoformat(),
        "model_name": reference.metadata.get("name"),
        "model_version": reference.version,
        "reference": {
            "source": reference.source,
            "rows": len(reference.table),
            "data_hash": reference.metadata.get("data_hash"),
        },
        "window": {
            **{key: window[key] for key in ("since", "until", "last", "requests")},
            "rows": rows,
            "corrupt_lines": window["corrupt_lines"],
            "other_versions": {
                version: count
                for version, count in sorted(versions.items())
                if version != reference.version
            },
        },
        "drifted_features": drifted,
        "checks": checks,
        "concept": concept_report,
        "thresholds": drift.model_dump(mode="json"),
    }


def _order(check: dict[str, Any]) -> tuple[int, int, float]:
    """Drift first, then what was judged; features before predictions; the largest first."""
    rank = {"drift": 0, "ok": 1, "too_few_rows": 2}[check["status"]]
    kind = {"feature": 0, "prediction": 1, "concept": 2}[check["kind"]]
    size = check["statistics"].get(check.get("decided_by") or "", 0.0)
    return rank, kind, -size if isinstance(size, float) and math.isfinite(size) else 0.0


def _feature_entry(result: FeatureDrift, kind: str) -> dict[str, Any]:
    entry = asdict(result)
    return {"kind": kind, "type": entry.pop("kind"), **entry}


class _PredictionChecks:
    """Class shares (or the predicted values) and mean confidence, against the champion's
    own predictions on its reference data."""

    def __init__(self, reference: Reference, model_dir: Path, params: DriftParams) -> None:
        model = load_model_dir(model_dir)
        contract = reference.contract
        scored = model.predict(contract.encode(_features(reference.table, contract)))
        self.params = params
        self.classes = model.classes
        self.confidence_reference = math.nan
        if model.classes is None:
            column = Column(name="prediction", type=ColumnType.NUMERIC)
        else:
            labels = tuple(category_key(label) for label in model.classes)
            column = Column(name="prediction", type=ColumnType.CATEGORICAL, categories=labels)
            assert scored.probabilities is not None
            self.confidence_reference = float(scored.probabilities.max(axis=1).mean())
        frame = pd.DataFrame({"prediction": scored.predictions})
        self.shares = DriftAccumulator(frame, [column], params)
        self.confidence_sum = 0.0
        self.rows = 0

    def merge(self, other: _PredictionChecks) -> None:
        self.shares.merge(other.shares)
        self.confidence_sum += other.confidence_sum
        self.rows += other.rows

    def update(self, chunk: pd.DataFrame) -> None:
        self.shares.update(chunk)
        if self.classes is not None and len(chunk):
            probabilities = chunk[[f"proba_{label}" for label in self.classes]].to_numpy()
            self.confidence_sum += float(np.nansum(probabilities.max(axis=1)))
            self.rows += len(chunk)

    def entries(self) -> list[dict[str, Any]]:
        entries = [_feature_entry(result, "prediction") for result in self.shares.results()]
        if self.classes is None:
            return entries
        current = self.confidence_sum / self.rows if self.rows else math.nan
        judged = self.rows >= self.params.min_rows
        change = abs(current - self.confidence_reference) if judged else math.nan
        drifted = judged and change > self.params.confidence_change
        entries.append(
            {
                "kind": "prediction",
                "type": "mean",
                "name": "mean_confidence",
                "status": "drift" if drifted else "ok" if judged else "too_few_rows",
                "decided_by": "confidence_change",
                "reference_rows": None,
                "current_rows": self.rows,
                "statistics": {
                    "reference": self.confidence_reference,
                    "current": current,
                    "confidence_change": change,
                },
                "checks": {"confidence_change": drifted},
                "histogram": None,
            }
        )
        return entries


class _LabelJoin:
    """Labels (request_id, optional row, the target, optional numeric KPI columns) joined
    with the window's rows; the matched rows are kept, as many as the labels file holds."""

    def __init__(self, path: Path, contract: Contract) -> None:
        table = read_table(path)
        target = contract.target.name
        missing = [name for name in ("request_id", target) if name not in table.columns]
        if missing:
            raise DataError(f"{path}: labels need the column(s) {', '.join(missing)}")
        if "row" not in table.columns:
            table["row"] = 0
        self.kpis = [name for name in table.columns if name not in (*JOIN_KEYS, target)]
        not_numeric = [n for n in self.kpis if not pd.api.types.is_numeric_dtype(table[n])]
        if not_numeric:
            raise DataError(
                f"{path}: extra label columns are business KPIs and must be numeric: "
                f"{', '.join(not_numeric)}"
            )
        table["request_id"] = table["request_id"].astype(str)
        try:
            table["row"] = pd.to_numeric(table["row"]).astype("int64")
        except (ValueError, TypeError):
            raise DataError(f"{path}: `row` must hold whole numbers") from None
        unlabelled = int(table[target].isna().sum())
        if unlabelled:
            raise DataError(f"{path}: {target} is missing on {unlabelled} row(s)")
        twice = table.duplicated(JOIN_KEYS)
        if twice.any():
            raise DataError(
                f"{path}: {int(twice.sum())} label(s) repeat a (request_id, row), e.g. "
                f"{table.loc[twice, 'request_id'].iloc[0]}"
            )
        self.path = path
        self.labels = table.assign(_label=np.arange(len(table)))
        self.target = target
        self.seen: list[np.ndarray] = []  # labels matched with any row of the window
        self.matched: list[pd.DataFrame] = []  # labels matched with the champion's rows

    def update(self, chunk: pd.DataFrame, served: pd.DataFrame) -> None:
        keys = chunk[JOIN_KEYS].astype({"request_id": str, "row": "int64"})
        self.seen.append(keys.merge(self.labels[[*JOIN_KEYS, "_label"]])["_label"].to_numpy())
        prediction_columns = [c for c in served.columns if c in ("prediction", "score")]
        prediction_columns += [c for c in served.columns if c.startswith("proba_")]
        rows = served[JOIN_KEYS + prediction_columns].astype({"request_id": str, "row": "int64"})
        self.matched.append(rows.merge(self.labels.drop(columns="_label"), on=JOIN_KEYS))

    def report(self, reference: Reference, params: Params) -> tuple[dict[str, Any], dict[str, Any]]:
        contract = reference.contract
        seen = np.unique(np.concatenate(self.seen)) if self.seen else np.array([])
        matched = pd.concat(self.matched) if self.matched else pd.DataFrame()
        champion: dict[str, float] = dict(reference.metadata.get("metrics", {}))
        gate = params.promotion.gate(contract.target.kind)
        metric = gate.primary_metric
        metrics, reason = self._metrics(matched, reference)
        judged = metrics is not None and len(matched) >= params.monitoring.drift.min_rows
        drop = math.nan
        if metrics is not None and metric in champion:
            sign = -1 if metric in LOWER_IS_BETTER else 1
            drop = sign * (champion[metric] - metrics[metric])
        drifted = judged and drop > params.monitoring.drift.metric_drop
        report = {
            "labels": str(self.path),
            "rows": len(self.labels),
            "matched": len(matched),
            "unknown_request_ids": int(len(self.labels) - len(seen)),
            "metrics": metrics,
            "champion_metrics": champion,
            "why_no_metrics": reason,
            "kpis": {
                name: {
                    "sum": float(matched[name].sum()) if len(matched) else 0.0,
                    "mean": float(matched[name].mean()) if len(matched) else math.nan,
                }
                for name in self.kpis
            },
        }
        entry = {
            "kind": "concept",
            "type": "metric",
            "name": metric,
            "status": "drift" if drifted else "ok" if judged else "too_few_rows",
            "decided_by": "metric_drop",
            "reference_rows": None,
            "current_rows": len(matched),
            "statistics": {
                "champion": champion.get(metric, math.nan),
                "live": metrics[metric] if metrics else math.nan,
                "metric_drop": drop,
            },
            "checks": {"metric_drop": drifted},
            "histogram": None,
        }
        return report, entry

    def _metrics(
        self, matched: pd.DataFrame, reference: Reference
    ) -> tuple[dict[str, float] | None, str | None]:
        if not len(matched):
            return None, "no label matches a prediction of this model version in the window"
        # scikit-learn comes with evaluate.py: imported only when there are labels (~2 s).
        from ..evaluate import Predictions, compute_metrics

        contract = reference.contract
        actual = matched[self.target]
        if contract.target.kind is TaskKind.REGRESSION:
            predictions = Predictions(
                actual.to_numpy(dtype=float), matched["prediction"].to_numpy(dtype=float)
            )
        else:
            classes = list(reference.metadata.get("classes") or contract.target.classes or [])
            by_key = {category_key(label): label for label in classes}
            unknown = sorted({category_key(v) for v in actual} - set(by_key))
            if unknown:
                raise DataError(
                    f"{self.path}: {self.target} has values the model does not know: "
                    f"{', '.join(unknown)} (classes: {', '.join(by_key)})"
                )
            as_class = np.vectorize(lambda value: by_key[category_key(value)], otypes=[object])
            probabilities = matched[[f"proba_{label}" for label in classes]].to_numpy()
            positive = (
                probabilities[:, classes.index(contract.target.classes[-1])]
                if contract.target.kind is TaskKind.BINARY and contract.target.classes
                else None
            )
            predictions = Predictions(
                as_class(actual.to_numpy()),
                as_class(matched["prediction"].to_numpy()),
                positive,
                probabilities,
                classes,
            )
        try:
            return compute_metrics(predictions, contract), None
        except ValueError as exc:  # e.g. one class only: ROC AUC is undefined
            return None, str(exc)


def _features(table: pd.DataFrame, contract: Contract) -> dict[str, Any]:
    return {name: table[name] for name in contract.feature_names}
