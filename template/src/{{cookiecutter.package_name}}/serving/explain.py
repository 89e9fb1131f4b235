"""POST /explain: the body /predict takes (the same request models, the same 422s), and each
feature's contribution to each record's raw output (see contributions.py)."""

from __future__ import annotations

import orjson
from pydantic import BaseModel, Field, ValidationError

from ..contributions import LINEAR_METHOD, OUTPUT_SPACE, TREE_METHOD
from .contract_models import RequestTypes
from .model_store import LoadedModel
from .predict import refusal


class ExplanationResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str
    method: str = Field(
        description=f"`{TREE_METHOD}` (tree models) or `{LINEAR_METHOD}` (linear models)."
    )
    output_space: str = Field(
        description="What the outputs are: `log_odds` of the class in `outputs` (binary), "
        "`class_margin` per class (multiclass: their softmax is the probabilities), `value` "
        "(regression)."
    )
    features: list[str] = Field(description="The order of each contributions row.")
    outputs: list[int | float | str] = Field(description="The class (or target) per output.")
    base_values: list[float] = Field(description="One per output: the raw output before any.")
    contributions: list[list[list[float]]] = Field(
        description="Record x output x feature; base value + a row's sum = its raw output."
    )
    raw_outputs: list[list[float]] = Field(description="Record x output: the model's margin.")


def explain(
    types: RequestTypes, model: LoadedModel, body: bytes, request_id: str
) -> tuple[int, bytes]:
    """Status and JSON body for one /explain request (already authorised)."""
    try:
        parsed = types.adapter.validate_json(body)
    except ValidationError as exc:
        return 422, refusal(exc.errors(include_url=False))
    explainer = model.explainer
    if explainer is None:
        scorer = model.metadata.get("scorer", "unknown")
        return 409, orjson.dumps(
            {"detail": f"model v{model.version} ({scorer}) has no explainer: trees or linear"}
        )
    columns, _ = types.to_columns(parsed)
    explanation = explainer.explain(model.contract.encode(columns))
    target = model.contract.target
    # A binary model's one margin is the log-odds of its second class, as in scikit-learn.
    outputs = model.classes[-explainer.outputs :] if model.classes else [target.name]
    return 200, orjson.dumps(
        {
            "request_id": request_id,
            "model_name": model.name,
            "model_version": model.version,
            "method": explainer.method,
            "output_space": OUTPUT_SPACE[target.kind],
            "features": model.contract.feature_names,
            "outputs": outputs,
            "base_values": explanation.base_values,
            "contributions": explanation.contributions,
            "raw_outputs": explanation.raw_outputs,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
