"""POST /predict from body bytes to response bytes: validate, encode, score, record.

One pydantic-core pass validates the raw body against the contract-generated request models
(the fields, ranges and category sets the OpenAPI page shows; 422 naming the field
otherwise). `Contract.encode` turns the rows into one float matrix, the model scores it, and
the answer is orjson bytes: no pandas, no per-request DataFrame, no response-model pass.
The record goes to the prediction log at its durability (prediction_log.py): queued, or
written (and fsynced) before the answer leaves; with `prediction_log_on_failure: refuse`, a
record that cannot be written turns the answer into a 503 naming why, for every caller of
`score`. The canary split (canary.py) chooses the model; its role labels the metrics and the
log line.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Protocol

import numpy as np
import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..config import LogDurability
from ..drift_bins import scores
from .canary import CanarySplit, Served
from .contract_models import RequestTypes
from .live_drift import LiveDrift
from .metrics import ServingMetrics
from .model_store import LoadedModel, Prediction
from .prediction_log import PredictionLog
from .runtime import ModelSlot, ShadowScorer
from .settings import Role

# Score histogram sample: observing every row of a 1,000-row batch would cost more than
# scoring it, so only the first rows of each request are observed.
SCORE_SAMPLE_ROWS = 32


def refusal(found: list[ErrorDetails]) -> bytes:
    """The 422 body for a request the contract refuses: each field, its message and type."""
    errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in found]
    return orjson.dumps({"detail": errors})


class Codec(Protocol):
    """How one protocol reads a request and writes its answer (/predict's JSON, V2's
    tensors in v2.py); validating, scoring, metrics, drift and the log are the service's."""

    def parse(self, body: bytes) -> Any:
        """The body as the contract's request types (`RequestTypes.adapter`)."""
        ...

    def refusal(self, errors: list[ErrorDetails]) -> tuple[int, bytes]: ...

    def answer(
        self,
        request_id: str,
        model: LoadedModel,
        result: Prediction,
        labels: list[Any],
        ids: list[Any] | None,
    ) -> bytes: ...


class PredictJson:
    """/predict: records or columns in one JSON body; predictions, classes, probabilities."""

    def __init__(self, types: RequestTypes) -> None:
        self.parse = types.validate_json

    def refusal(self, errors: list[ErrorDetails]) -> tuple[int, bytes]:
        return 422, refusal(errors)

    def answer(
        self,
        request_id: str,
        model: LoadedModel,
        result: Prediction,
        labels: list[Any],
        ids: list[Any] | None,
    ) -> bytes:
        return orjson.dumps(
            {
                "request_id": request_id,
                "model_name": model.name,
                "model_version": model.version,
                "predictions": labels,
                "classes": model.classes,
                "probabilities": result.probabilities,
                "ids": ids if ids is not None and ids.count(None) != len(ids) else None,
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )


class PredictService:
    def __init__(
        self,
        slot: ModelSlot,
        types: RequestTypes,
        metrics: ServingMetrics,
        prediction_log: PredictionLog | None,
        shadow: ShadowScorer | None,
        drift: LiveDrift,
        split: CanarySplit | None = None,
    ) -> None:
        """`split` None: the slot's model answers every request, labelled stable."""
        self.slot = slot
        self.split = split or CanarySplit(slot, None, 0, Role.STABLE)
        self.types = types
        self.metrics = metrics
        self.drift = drift
        self.prediction_log = prediction_log
        self.shadow = shadow
        self.json = PredictJson(types)
        # Label lookups cost more than the increments: children are kept per label set.
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    async def handle(
        self, body: bytes, request_id: str, caller_id: str | None = None
    ) -> tuple[int, bytes]:
        """Status and JSON body for one /predict request (already authorised); the canary
        split chooses the model, sticky per `caller_id` when given."""
        return await self.score(body, request_id, self.split.choose(caller_id))

    async def score(
        self, body: bytes, request_id: str, served: Served, codec: Codec | None = None
    ) -> tuple[int, bytes]:
        """`handle` with the model already chosen (the route labels its metrics with it);
        `codec` reads the body and writes the answer (default: /predict's JSON)."""
        started = time.perf_counter()
        codec = codec or self.json
        try:
            parsed = codec.parse(body)
        except ValidationError as exc:
            found = exc.errors(include_url=False)
            self.drift.refused(found)
            return codec.refusal(found)
        role, current = served
        columns, rows = self.types.to_columns(parsed)
        matrix = current.contract.encode(columns)
        result = current.predict(matrix)
        labels = result.predictions.tolist()
        ids = columns.get(self.types.id_name) if self.types.id_name else None
        content = codec.answer(request_id, current, result, labels, ids)
        self._observe(served, labels, result, matrix, columns)
        if self.prediction_log is not None:
            record = {
                "request_id": request_id,
                "model_name": current.name,
                "model_version": current.version,
                "lineage": current.lineage,
                "role": role.value,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                "rows": rows,
                "inputs": columns,
                "outputs": {
                    "predictions": labels,
                    "classes": current.classes,
                    "probabilities": result.probabilities,
                },
                "shadow": None,
            }
            refused = await self._record(self.prediction_log, matrix, record)
            if refused is not None:
                return 503, orjson.dumps({"detail": refused, "request_id": request_id})
        return 200, content

    async def _record(
        self, log: PredictionLog, matrix: np.ndarray, record: dict[str, Any]
    ) -> str | None:
        """Hand the record to the log; None, or why the answer may not leave (log.record).
        When the line must be written before the answer, the shadow scores here, not in
        its thread, so that the line is whole when it is written."""
        if self.shadow is not None:
            if log.durability is LogDurability.QUEUED:
                if self.shadow.submit(matrix, record):
                    return None
            else:
                record["shadow"] = self.shadow.score(matrix, record["request_id"])
        return await log.record(record)

    def _observe(
        self,
        served: Served,
        labels: list[Any],
        result: Prediction,
        matrix: np.ndarray,
        columns: dict[str, list[Any]],
    ) -> None:
        rows = len(labels)
        self.metrics.batch_rows.observe(rows)
        role, model = served
        version = model.version
        if result.probabilities is None:
            self._counter(role, version, "value").inc(rows)
        elif rows == 1:
            self._counter(role, version, str(labels[0])).inc()
        else:
            for label, count in Counter(labels).items():
                self._counter(role, version, str(label)).inc(count)
        row_scores = scores(result.probabilities, result.predictions)
        histogram = self._histograms.get((role, version))
        if histogram is None:
            histogram = self.metrics.scores.labels(role.value, version)
            self._histograms[role, version] = histogram
        for score in row_scores[:SCORE_SAMPLE_ROWS].tolist():
            histogram.observe(score)
        # Live drift counts into one model's reference bins; switching them for every canary
        # request would flush each time. The canary's scores are in prediction_score{role}.
        if model is self.slot.current:
            self.drift.observe(model, matrix, columns, row_scores)

    def _counter(self, role: Role, version: str, label: str) -> Any:
        counter = self._counters.get((role, version, label))
        if counter is None:
            counter = self.metrics.predicted_rows.labels(role.value, version, label)
            self._counters[role, version, label] = counter
        return counter
