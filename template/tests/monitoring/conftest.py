"""A project with an exported champion, its training table in the DVC cache, and a helper
that logs traffic the way the service does (the champion's real predictions)."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from serving.conftest import cached_export
from serving.exports import ROWS
from support import project_params

from {{ cookiecutter.package_name }}.data import make_sample, write_table
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.model_store import load_model_dir
from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME

CHAMPION = Path("models/champion")
LOG_DIR = Path("logs/predictions")
RAW = Path(project_params()["data"]["raw"])


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def project(
    pytestconfig: pytest.Config, make_project: Callable[..., Path], contract: Contract
) -> Path:
    """The working directory: champion v1 exported, its raw table where DVC caches it."""
    root = make_project()
    shutil.copytree(cached_export(pytestconfig, "1"), root / CHAMPION)
    # The export trained on the sample of its version's seed: that table is the reference.
    write_table(make_sample(contract, ROWS, seed=1), root / RAW)
    data_hash = md5(root / RAW)
    cached = root / ".dvc/cache/files/md5" / data_hash[:2] / data_hash[2:]
    cached.parent.mkdir(parents=True)
    shutil.move(root / RAW, cached)
    metadata_path = root / CHAMPION / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata_path.write_text(json.dumps({**metadata, "data_hash": data_hash}))
    return root


LogTraffic = Callable[..., list[str]]


@pytest.fixture
def log_traffic(project: Path) -> LogTraffic:
    """Score `table` with the champion and append it to the log, `per_request` rows a request;
    returns the request ids."""
    model = load_model_dir(project / CHAMPION)
    contract = model.contract
    start = datetime.now(UTC) - timedelta(hours=1)

    def write(table: pd.DataFrame, per_request: int = 25, version: str = "1") -> list[str]:
        names = [*([contract.id] if contract.id else []), *contract.feature_names]
        names += [column.name for column in contract.sensitive]
        scored = model.predict(contract.encode({n: table[n] for n in contract.feature_names}))
        lines, ids = [], []
        for number, first in enumerate(range(0, len(table), per_request)):
            part = slice(first, first + per_request)
            request_id = uuid.uuid4().hex
            ids.append(request_id)
            inputs = {n: [_json(v) for v in table[n].iloc[part]] for n in names}
            outputs: dict[str, Any] = {
                "predictions": scored.predictions[part].tolist(),
                "classes": model.classes,
                "probabilities": (
                    scored.probabilities[part] if scored.probabilities is not None else None
                ),
            }
            stamp = start + timedelta(seconds=number)
            record = {
                "request_id": request_id,
                "timestamp": stamp.isoformat(),
                "model_name": model.name,
                "model_version": version,
                "latency_ms": 1.0,
                "rows": len(inputs[names[0]]),
                "inputs": inputs,
                "outputs": outputs,
                "shadow": None,
            }
            option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
            lines.append(orjson.dumps(record, option=option))
        (project / LOG_DIR).mkdir(parents=True, exist_ok=True)
        with (project / LOG_DIR / LOG_FILE_NAME).open("ab") as log:
            log.write(b"".join(lines))
        return ids

    return write


def _json(value: Any) -> Any:
    """A cell as the service logs it: missing as null, numpy scalars as Python's."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value
