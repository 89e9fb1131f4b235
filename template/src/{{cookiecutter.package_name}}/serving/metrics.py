"""Prometheus metrics, correct with one worker or many.

With `PROMETHEUS_MULTIPROC_DIR` set (as `make serve` and the image do), prometheus-client
writes each worker's values to files there and /metrics adds them up, whichever worker
answers the scrape; without it, the metrics live in this process's own registry.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from .prediction_log import DROP_REASONS

# Sub-millisecond buckets: a single-record prediction takes about 1 ms end to end.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_PROBABILITY_BUCKETS = tuple(i / 10 for i in range(1, 11))
# Regression targets have no fixed scale: decades cover most of them.
_VALUE_BUCKETS = (0.0, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7)
_MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics"]


class ServingMetrics:
    def __init__(self, regression: bool) -> None:
        # Its own registry, so tests can build several apps in one process.
        self.registry = CollectorRegistry()
        registry = self.registry
        # role: stable or canary (serving/canary.py); model_version: of the model that
        # answered (the stable one's for routes that score nothing).
        labels = ["route", "method", "status", "role", "model_version"]
        self.requests = Counter(
            "http_requests",
            "HTTP requests by route, method, status, role and model version.",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the end of the response, by route, status, role and "
            "model version.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.predicted_rows = Counter(
            "predictions",
            "Predicted rows by role, model version and predicted class (regression: label "
            "'value').",
            ["role", "model_version", "prediction"],
            registry=registry,
        )
        self.scores = Histogram(
            "prediction_score",
            "Positive-class probability (binary), top probability (multiclass) or "
            "predicted value (regression); the first 32 rows of each request; by role and "
            "model version.",
            ["role", "model_version"],
            buckets=_VALUE_BUCKETS if regression else _PROBABILITY_BUCKETS,
            registry=registry,
        )
        self.batch_rows = Histogram(
            "prediction_batch_rows",
            "Rows per /predict request.",
            buckets=(1, 10, 100, 1_000, 10_000, 100_000),
            registry=registry,
        )
        # Each live worker serves one model: the largest value over live workers is the answer.
        self.model_info = Gauge(
            "model_info",
            "The model being served (value 1), by name and version.",
            ["name", "version", "alias"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        # Live drift (live_drift.py): rows counted into the served model's reference bins,
        # beside the reference's own shares; Prometheus' rules turn the two into a PSI.
        self.feature_values = Counter(
            "feature_values",
            "Values received by feature and reference bin (decile, category, missing, or "
            "unknown: scored as missing, or refused with a 422 when unknown categories are).",
            ["feature", "bin"],
            registry=registry,
        )
        self.feature_reference_share = Gauge(
            "feature_reference_share",
            "Share of the served model's training rows in each feature_values bin.",
            ["feature", "bin"],
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.score_values = Counter(
            "prediction_score_values",
            "Predicted rows by reference decile of their score (as prediction_score).",
            ["bin"],
            registry=registry,
        )
        self.score_reference_share = Gauge(
            "prediction_score_reference_share",
            "Share of the served model's training rows in each prediction_score_values bin.",
            ["bin"],
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.model_data_timestamp = Gauge(
            "model_data_timestamp_seconds",
            "When the served model's training data was written (Unix time): time() minus this "
            "is its age.",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.prediction_log_dropped = Counter(
            "prediction_log_dropped",
            "Prediction log records not written, by reason: queue_full (the writer was "
            "behind), write_error (the write failed), sync_error (its fsync failed). With "
            "prediction_log_on_failure: refuse, a write_error or sync_error is a 503, not an "
            "answer.",
            ["reason"],
            registry=registry,
        )
        # Every reason exists from the start (at 0), in every worker: the first loss is an
        # increase the PredictionLogLoss alert sees.
        self._log_dropped = {
            reason: self.prediction_log_dropped.labels(reason) for reason in DROP_REASONS
        }
        self.shadow_dropped = Counter(
            "shadow_dropped",
            "Requests the shadow model skipped because its queue was full.",
            registry=registry,
        )
        self.model_reloads = Counter(
            "model_reloads",
            "Model reload attempts by outcome.",
            ["outcome"],
            registry=registry,
        )
        # Both outcomes exist from the start (at 0), so rate() and increase() see the first one.
        for outcome in ("swapped", "failed"):
            self.model_reloads.labels(outcome)

    def prediction_log_lost(self, reason: str, records: int) -> None:
        """The prediction log's `on_drop`: `records` records not written, for `reason`."""
        self._log_dropped[reason].inc(records)

    def exposition(self) -> bytes:
        """The text /metrics answers: every worker's values when they share a directory."""
        if _MULTIPROCESS_DIR not in os.environ:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def close(self) -> None:
        """This worker is exiting: its live gauges (model_info) stop counting."""
        if _MULTIPROCESS_DIR in os.environ:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
