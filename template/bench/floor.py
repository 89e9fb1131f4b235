"""The floor `make bench` measures the service against: a bare FastAPI app, no model.

One `async def` route takes the same contract-generated record model as POST /predict (FastAPI
parses and validates it the usual way) and returns a constant. Whatever the service spends
above this is its own work: `uvicorn --factory floor:create_app` (bench/ on the path).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from {{ cookiecutter.package_name }}.config import UnknownCategories
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.serving.contract_models import build_request_types


def create_app() -> FastAPI:
    contract = Contract.load(Path(os.environ.get("MODEL_DIR", "models/champion")) / "schema.yaml")
    record = build_request_types(contract, UnknownCategories.REJECT, 1).record
    # As the service: no per-request question to OpenTelemetry's global providers.
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    async def predict(body: Any) -> dict[str, str]:
        return {"status": "ok"}

    predict.__annotations__ = {"body": record, "return": dict[str, str]}
    app.post("/predict")(predict)
    return app
