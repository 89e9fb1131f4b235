"""POST /predict from raw body to response bytes, shared by the ASGI fast path and the route.

One pydantic-core pass validates the body against the contract-generated request models (the
same named, typed fields, ranges and category sets the OpenAPI page shows; 422 with field
errors otherwise). A single record then goes straight to a list of floats and the compiled
scorer's one-record path; lists and columnar batches go through one float matrix. Responses
are orjson bytes. Nothing here touches pandas, scikit-learn or the disk: the prediction log
and the shadow model get a queued record, the request does not wait for them.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import Counter
from collections.abc import Callable
from itertools import repeat
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from ..schema import ColumnType
from .contract_models import RequestTypes
from .metrics import ServingMetrics
from .model_store import LoadedModel
from .prediction_log import PredictionLog
from .runtime import ModelSlot, ShadowScorer

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# Score histogram sample: each observe() costs ~1.5 us, so a 1,000-row batch would spend
# longer on the histogram than on the model: only the first rows of each request are observed.
SCORE_SAMPLE_ROWS = 32
UNAUTHORIZED = orjson.dumps({"detail": "missing or wrong X-API-Key header"})


class PredictService:
    def __init__(
        self,
        slot: ModelSlot,
        types: RequestTypes,
        metrics: ServingMetrics,
        prediction_log: PredictionLog | None,
        shadow: ShadowScorer | None,
        api_key: str | None,
    ) -> None:
        self.slot = slot
        self.types = types
        self.metrics = metrics
        self.prediction_log = prediction_log
        self.shadow = shadow
        self._api_key = api_key.encode() if api_key else None
        self._validate_json = types.adapter.validate_json
        self._names = (*types.feature_names, *types.passthrough_names)
        contract = slot.current.contract
        # Per feature: its name and, for categorical ones, the category -> code map.
        self._fields: tuple[tuple[str, dict[str, float] | None], ...] = tuple(
            (
                column.name,
                {c: float(i) for i, c in enumerate(column.categories or ())}
                if column.type is ColumnType.CATEGORICAL
                else None,
            )
            for column in contract.features
        )
        self._counters: dict[tuple[str, str], Any] = {}
        self._histograms: dict[str, Any] = {}

    def authorized(self, key: bytes | None) -> bool:
        return self._api_key is None or (
            key is not None and secrets.compare_digest(key, self._api_key)
        )

    def handle(self, body: bytes, request_id: str, started: float) -> tuple[int, bytes]:
        """Status and JSON body for one /predict request (authorisation already checked)."""
        try:
            parsed = self._validate_json(body)
        except ValidationError as exc:
            errors = [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False)
            ]
            return 422, orjson.dumps({"detail": errors})
        current = self.slot.current
        matrix: np.ndarray | None = None
        if isinstance(parsed, self.types.record):
            rows = 1
            row = self.row(parsed)
            label, probabilities = current.predict_row(row)
            labels: list[Any] = [label]
            probability_rows: Any = None if probabilities is None else [probabilities]
            columns: dict[str, list[Any]] | None = None
            ids = [getattr(parsed, self.types.id_name)] if self.types.id_name else None
        else:
            columns, rows = self.types.to_columns(parsed)
            matrix = self.encode(columns, rows)
            result = current.predict(matrix)
            labels = result.predictions.tolist()
            probability_rows = result.probabilities
            ids = columns.get(self.types.id_name) if self.types.id_name else None
        content = orjson.dumps(
            {
                "request_id": request_id,
                "model_name": current.name,
                "model_version": current.version,
                "predictions": labels,
                "classes": current.classes,
                "probabilities": probability_rows,
                "ids": ids if ids is not None and ids.count(None) != len(ids) else None,
            },
            option=JSON_OPTIONS,
        )
        latency = time.perf_counter() - started
        self._observe(current, labels, probability_rows, rows)
        log = self.prediction_log
        if log is not None:
            if columns is None:
                columns = {name: [getattr(parsed, name)] for name in self._names}
            record = {
                "request_id": request_id,
                "timestamp": time.time(),  # formatted by the writer thread
                "model_name": current.name,
                "model_version": current.version,
                "latency_ms": round(latency * 1000, 3),
                "rows": rows,
                "inputs": columns,
                "outputs": {
                    "predictions": labels,
                    "classes": current.classes,
                    "probabilities": probability_rows,
                },
                "shadow": None,
            }
            shadow = self.shadow
            if shadow is not None and matrix is None:
                matrix = np.asarray([row], dtype=np.float64)
            if shadow is None or not shadow.submit(matrix, record):  # type: ignore[arg-type]
                log.append(record)
        return 200, content

    def encode(self, columns: dict[str, list[Any]], rows: int) -> np.ndarray:
        """Validated columns as `Contract.encode` would give them, in C-level loops."""
        matrix = np.empty((rows, len(self._fields)), dtype=np.float64)
        missing = repeat(math.nan, rows)
        for j, (name, codes) in enumerate(self._fields):
            values = columns[name]
            if codes is not None:  # validated: a category, another string, or None
                matrix[:, j] = np.fromiter(map(codes.get, values, missing), np.float64, rows)
                missing = repeat(math.nan, rows)
            else:
                matrix[:, j] = np.asarray(values, dtype=np.float64)  # None -> NaN
        return matrix

    def row(self, record: Any) -> list[float]:
        """One validated record as the encoded floats `Contract.encode` would give."""
        row = []
        for name, codes in self._fields:
            value = getattr(record, name)
            if value is None:
                row.append(math.nan)
            elif codes is not None:
                row.append(codes.get(value, math.nan))
            else:
                row.append(float(value))
        return row

    def _observe(
        self, model: LoadedModel, labels: list[Any], probabilities: Any, rows: int
    ) -> None:
        metrics = self.metrics
        metrics.batch_rows.observe(rows)
        version = model.version
        if probabilities is None:
            self._counter(version, "value").inc(rows)
            scores = labels[:SCORE_SAMPLE_ROWS]
        else:
            if rows == 1:
                self._counter(version, str(labels[0])).inc()
            else:
                for label, count in Counter(labels).items():
                    self._counter(version, str(label)).inc(count)
            if isinstance(probabilities, list):
                sample = probabilities[:SCORE_SAMPLE_ROWS]
                scores = [p[-1] if len(p) == 2 else max(p) for p in sample]
            else:
                matrix = probabilities[:SCORE_SAMPLE_ROWS]
                scores = (matrix[:, -1] if matrix.shape[1] == 2 else matrix.max(axis=1)).tolist()
        histogram = self._histograms.get(version)
        if histogram is None:
            histogram = self._histograms[version] = metrics.scores.labels(version)
        for score in scores:
            histogram.observe(score)

    def _counter(self, version: str, label: str) -> Any:
        key = (version, label)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.metrics.predicted_rows.labels(version, label)
        return counter


def request_id_factory() -> Callable[[], str]:
    """32 hex characters like a uuid4: a random per-process prefix and a counter (a uuid4
    reads os.urandom on every request)."""
    prefix = secrets.token_hex(10)
    counter = iter(range(1 << 48))
    return lambda: f"{prefix}{next(counter):012x}"
