"""Live drift counts: every served row, into the served model's reference bins (drift_bins.py).

A request adds its rows to this worker's list of counts (a bisect a feature for one record,
a few numpy steps for a batch); a thread adds the counts to the Prometheus counters every
second and at shutdown, so no request pays a counter increment per feature (measured: 1-2 µs
a record, against ~19 µs for the numpy steps alone). The served model's reference
shares and data timestamp are published beside them; monitoring/alerts.yml turns counts and
shares into a PSI per feature and for the score.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from ..drift_bins import MISSING, UNKNOWN, assign
from ..schema import ColumnType
from .metrics import ServingMetrics
from .model_store import LoadedModel

logger = logging.getLogger(__name__)

# pydantic's error type for a value outside a Literal: a category the contract does not list.
_UNKNOWN_CATEGORY_ERROR = "literal_error"


class _Layout:
    """Where each bin of each feature, then of the score, sits in the flat list of counts."""

    def __init__(self, model: LoadedModel, reference: Mapping[str, Any]) -> None:
        features = model.contract.features
        profiles = [reference["features"][column.name] for column in features]
        self.names = [column.name for column in features]
        self.edges: list[list[float]] = [profile["edges"] for profile in profiles]
        self.labels: list[tuple[str, str]] = []
        self.shares: list[float] = []
        self.offsets: list[int] = []
        self.missing: list[int] = []
        self.unknown: list[int | None] = []  # categorical features: their `unknown` slot
        for column, profile in zip(features, profiles, strict=True):
            bins, offset = profile["bins"], len(self.labels)
            self.offsets.append(offset)
            self.missing.append(offset + bins.index(MISSING))
            categorical = column.type is ColumnType.CATEGORICAL
            self.unknown.append(offset + bins.index(UNKNOWN) if categorical else None)
            self.labels.extend((column.name, label) for label in bins)
            self.shares.extend(profile["shares"])
        score = reference["score"]
        self.score_offset = len(self.labels)
        self.score_edges: list[float] = score["edges"]
        self.score_labels: list[str] = score["bins"]
        self.score_shares: list[float] = score["shares"]
        self.size = self.score_offset + len(self.score_labels)

    def record_slots(
        self, row: list[float], columns: Mapping[str, Sequence[Any]], score: float
    ) -> list[int]:
        """The slot of each value of one record, then of its score: plain Python, no numpy
        call (bisect_left is `assign`'s searchsorted, value by value)."""
        slots = []
        for index, value in enumerate(row):
            if value == value:  # not NaN
                slots.append(self.offsets[index] + bisect_left(self.edges[index], value))
            else:
                slots.append(self._absent(index, columns[self.names[index]][0]))
        slots.append(self.score_offset + bisect_left(self.score_edges, score))
        return slots

    def slots(
        self, matrix: np.ndarray, columns: Mapping[str, Sequence[Any]], scores: np.ndarray
    ) -> np.ndarray:
        """The slot of every value of a batch's rows, then of every score."""
        parts = [assign(np.asarray(self.score_edges), scores) + self.score_offset]
        for index, name in enumerate(self.names):
            values = matrix[:, index]
            slots = assign(np.asarray(self.edges[index]), values) + self.offsets[index]
            for row in np.flatnonzero(np.isnan(values)).tolist():
                slots[row] = self._absent(index, columns[name][row])
            parts.append(slots)
        return np.concatenate(parts)

    def _absent(self, index: int, raw: Any) -> int:
        """A value encoded as NaN: missing, or a category the contract does not list."""
        unknown = self.unknown[index]
        return unknown if unknown is not None and raw is not None else self.missing[index]


class LiveDrift:
    def __init__(self, metrics: ServingMetrics, interval: float = 1.0) -> None:
        self._metrics = metrics
        self._interval = interval
        self._lock = threading.Lock()  # the request path and the flushing thread
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-drift", daemon=True)
        self._model: LoadedModel | None = None
        self._layout: _Layout | None = None
        self._children: list[Any] = []
        self._counts: list[int] = []

    def use(self, model: LoadedModel) -> None:
        """Count into `model`'s bins from now on: at start-up, and after a hot swap."""
        self.flush()  # the previous model's rows go to its own bins
        metrics = self._metrics
        stamp = model.metadata.get("data_timestamp") or model.metadata.get("trained_at")
        if stamp:
            metrics.model_data_timestamp.set(datetime.fromisoformat(stamp).timestamp())
        reference = model.metadata.get("reference")
        layout = _Layout(model, reference) if reference else None
        children: list[Any] = []
        if layout is None:
            logger.warning(
                "no drift reference in the model's metadata.json: no live drift counts",
                extra={"model_version": model.version},
            )
        else:
            for (feature, label), share in zip(layout.labels, layout.shares, strict=True):
                metrics.feature_reference_share.labels(feature, label).set(share)
                children.append(metrics.feature_values.labels(feature, label))
            for label, share in zip(layout.score_labels, layout.score_shares, strict=True):
                metrics.score_reference_share.labels(label).set(share)
                children.append(metrics.score_values.labels(label))
        with self._lock:
            self._model, self._layout, self._children = model, layout, children
            self._counts = [0] * (layout.size if layout else 0)

    def observe(
        self,
        model: LoadedModel,
        matrix: np.ndarray,
        columns: Mapping[str, Sequence[Any]],
        scores: np.ndarray,
    ) -> None:
        """Count a scored request's rows (the encoded matrix, the raw columns, the scores)."""
        if model is not self._model:
            self.use(model)
        layout = self._layout
        if layout is None:
            return
        if len(matrix) == 1:
            slots = layout.record_slots(matrix[0].tolist(), columns, float(scores[0]))
            with self._lock:
                if layout is self._layout:  # not swapped meanwhile
                    counts = self._counts
                    for slot in slots:
                        counts[slot] += 1
            return
        added = np.bincount(layout.slots(matrix, columns, scores), minlength=layout.size)
        with self._lock:
            if layout is self._layout:
                self._counts = [a + b for a, b in zip(self._counts, added.tolist(), strict=True)]

    def refused(self, errors: Sequence[Mapping[str, Any]]) -> None:
        """Count the unknown categories of a request refused with a 422 (pydantic's errors),
        by feature."""
        layout = self._layout
        if layout is None:
            return
        for error in errors:
            # A required category sent as null fails the same way: that one is missing.
            if error["type"] != _UNKNOWN_CATEGORY_ERROR or error.get("input") is None:
                continue
            slots = [
                layout.unknown[layout.names.index(part)]
                for part in error["loc"]
                if part in layout.names
            ]
            if slots and slots[0] is not None:
                with self._lock:
                    if layout is self._layout:
                        self._counts[slots[0]] += 1

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and flush what is left (the worker is shutting down)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.flush()

    def flush(self) -> None:
        """Add the counts so far to the Prometheus counters."""
        with self._lock:
            counts, children = self._counts, self._children
            self._counts = [0] * len(counts)
        for child, count in zip(children, counts, strict=True):
            if count:
                child.inc(count)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()
