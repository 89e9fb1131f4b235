"""The served model, its hot swap, and the optional shadow (challenger) model."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .model_store import LoadedModel, ModelLoadError, load_model_dir, load_registered_model
from .prediction_log import PredictionLog
from .settings import ServingSettings

logger = logging.getLogger(__name__)


def load_primary(settings: ServingSettings) -> LoadedModel:
    if settings.model_uri:
        return load_registered_model(settings.model_uri, settings.trusted_types)
    return load_model_dir(settings.model_dir, settings.trusted_types)


class ModelSlot:
    """Holds the current model. Requests read `current` once; a reload replaces it whole.

    Rebinding one attribute is atomic in CPython, so a request sees the old model or the new
    one, never a half-loaded one, and nothing waits: the new model is fully loaded first.
    """

    def __init__(self, model: LoadedModel, loader: Callable[[], LoadedModel]) -> None:
        self.current = model
        self._loader = loader
        self._reload_lock = threading.Lock()

    def reload(self) -> tuple[LoadedModel, LoadedModel]:
        """Load the configured model again and swap it in; returns (previous, new)."""
        with self._reload_lock:  # two reloads at once would race on which one wins
            new = self._loader()
            previous = self.current
            if new.contract != previous.contract:
                raise ModelLoadError(
                    "the new model was trained on a different data contract; the API's "
                    "request schema is built from the contract, so restart the service instead"
                )
            self.current = new
            return previous, new


class ShadowScorer:
    """Scores requests with a challenger off the request path; results go to the log only."""

    def __init__(
        self,
        model: LoadedModel,
        log: PredictionLog | None,
        queue_size: int,
        on_drop: Callable[[], None],
    ) -> None:
        self.model = model
        self._log = log
        self._on_drop = on_drop
        self._queue: queue.Queue[tuple[np.ndarray, dict[str, Any]] | None] = queue.Queue(
            maxsize=queue_size
        )
        self._thread = threading.Thread(target=self._run, name="shadow-model", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, matrix: np.ndarray, record: dict[str, Any]) -> bool:
        """Queue a request for the shadow; False (and counted) if the shadow is behind."""
        try:
            self._queue.put_nowait((matrix, record))
        except queue.Full:
            self._on_drop()
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def score(self, matrix: np.ndarray, request_id: str = "") -> dict[str, Any]:
        """The log line's `shadow` field for these rows; a failure is logged, never raised."""
        try:
            result = self.model.predict(matrix)
        except Exception:
            logger.exception("shadow model failed", extra={"request_id": request_id})
            return {"model_version": self.model.version, "error": True}
        return {
            "model_version": self.model.version,
            "predictions": result.predictions.tolist(),
            "probabilities": result.probabilities,
        }

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            matrix, record = item
            record["shadow"] = self.score(matrix, record["request_id"])
            if self._log is not None:
                self._log.append(record)
