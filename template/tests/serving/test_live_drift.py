"""Live drift counts: one record at a time or a batch, the same bins as the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }}.drift_bins import scores
from {{ cookiecutter.package_name }}.schema import ColumnType
from {{ cookiecutter.package_name }}.serving.live_drift import LiveDrift
from {{ cookiecutter.package_name }}.serving.metrics import ServingMetrics
from {{ cookiecutter.package_name }}.serving.model_store import LoadedModel, load_model_dir

from .test_app import RECORD


def _counts(metrics: ServingMetrics) -> dict[tuple[str, ...], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, sample.labels.get("feature", ""), sample.labels["bin"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("feature_values_total", "prediction_score_values_total")
    }


def _records(model: LoadedModel) -> list[dict[str, Any]]:
    """The example, then each categorical missing and unknown, each nullable one missing."""
    records = [dict(RECORD)]
    for column in model.contract.features:
        if column.type is ColumnType.CATEGORICAL:
            records.append({**RECORD, column.name: "never-seen"})
        if column.nullable:
            records.append({**RECORD, column.name: None})
    return records


def _observe(drift: LiveDrift, model: LoadedModel, records: list[dict[str, Any]]) -> None:
    columns = {name: [record[name] for record in records] for name in RECORD}
    matrix = model.contract.encode(columns)
    result = model.predict(matrix)
    drift.observe(model, matrix, columns, scores(result.probabilities, result.predictions))


def test_one_record_at_a_time_counts_like_a_batch(export_dir: Path) -> None:
    model = load_model_dir(export_dir)
    records = _records(model)
    one_by_one, batched = ServingMetrics(regression=False), ServingMetrics(regression=False)
    single, batch = LiveDrift(one_by_one), LiveDrift(batched)
    for drift in (single, batch):
        drift.use(model)
    for record in records:
        _observe(single, model, [record])
    _observe(batch, model, records)
    single.flush()
    batch.flush()
    counts = _counts(one_by_one)
    assert counts == _counts(batched)
    categorical = next(c.name for c in model.contract.features if c.categories)
    assert counts["feature_values_total", categorical, "unknown"] == 1
    assert sum(v for k, v in counts.items() if k[0] == "prediction_score_values_total") == len(
        records
    )
    for column in model.contract.features:
        values = [v for k, v in counts.items() if k[:2] == ("feature_values_total", column.name)]
        assert sum(values) == len(records)


def test_counts_wait_for_the_flush_and_a_swap_flushes(export_dir: Path, export_v2: Path) -> None:
    metrics = ServingMetrics(regression=False)
    drift = LiveDrift(metrics)
    first, second = load_model_dir(export_dir), load_model_dir(export_v2)
    drift.use(first)
    _observe(drift, first, [RECORD])
    assert sum(_counts(metrics).values()) == 0  # nothing on the request path
    _observe(drift, second, [RECORD])  # a hot swap: the first model's row is flushed
    assert sum(_counts(metrics).values()) == len(RECORD) + 1
    drift.start()
    drift.close()  # shutdown flushes the rest
    assert sum(_counts(metrics).values()) == 2 * (len(RECORD) + 1)


def test_refused_unknown_categories_are_counted_by_field(export_dir: Path) -> None:
    metrics = ServingMetrics(regression=False)
    drift = LiveDrift(metrics)
    model = load_model_dir(export_dir)
    drift.use(model)
    categorical = next(c.name for c in model.contract.features if c.categories)
    numeric = next(c.name for c in model.contract.features if not c.categories)
    drift.refused(
        [
            {"loc": ("records", 3, categorical), "type": "literal_error", "input": "new"},
            {"loc": ("records", 4, categorical), "type": "literal_error", "input": None},
            {"loc": ("record", numeric), "type": "greater_than_equal", "input": -1},
        ]
    )
    drift.flush()
    counts = {k: v for k, v in _counts(metrics).items() if v}
    assert counts == {("feature_values_total", categorical, "unknown"): 1}
    assert np.isclose(sum(_shares(metrics, categorical)), 1)


def _shares(metrics: ServingMetrics, feature: str) -> list[float]:
    text = generate_latest(metrics.registry).decode()
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "feature_reference_share" and sample.labels["feature"] == feature
    ]
