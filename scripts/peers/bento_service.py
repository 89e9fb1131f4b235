"""The champion as a BentoML 1.4 service, for scripts/bench_peers.py (BentoML's own environment).

The least a BentoML user writes for a scikit-learn model: one API taking the encoded feature
matrix (`{"inputs": [[...], ...]}`) and returning the predictions. bench_peers.py exports the
champion's estimator to $MODEL_FILE with joblib, in the project's environment.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import joblib
import numpy as np


# No access line a request, as this service runs in the benchmark (its LOG_LEVEL=WARNING).
@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Champion:
    def __init__(self) -> None:
        self.model: Any = joblib.load(os.environ["MODEL_FILE"])

    @bentoml.api  # type: ignore[untyped-decorator]  # bentoml is not installed here
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(inputs))
