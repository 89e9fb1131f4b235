"""The Open Inference Protocol (V2: KServe, Seldon Core 2, Triton) as a codec of the one
predict path (predict.py): its tensors in, the contract's columns to score, tensors out.

Each contract column is a named input tensor of shape [n] or [n, 1]: FP64 for numeric
features, INT64 for integers, BOOL, BYTES for categories and text (an id: INT64 or BYTES).
The features are required (the nullable ones may be left out, as in /predict); sensitive and
other columns are optional inputs, logged and never scored. The outputs are `predictions` [n]
and, for a classifier, `probabilities` [n, k] with the class names in its `parameters`.
A nullable numeric column's missing value is NaN (an array holds no null) or JSON's null.
Tensor data comes as JSON or, after the JSON header, as binary (Triton's binary tensor
extension, which tritonclient uses by default); the answer is JSON, which every client reads.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, TypeAdapter
from pydantic import ValidationError as _ValidationError
from pydantic_core import ErrorDetails

from ..schema import Column, ColumnType, Contract
from .contract_models import RequestTypes
from .model_store import LoadedModel, Prediction

# The datatype a column is declared with, and what else a client may send for it (the
# narrower arrays numpy clients hold); the values then go through the contract's checks.
DECLARED = {
    ColumnType.NUMERIC: "FP64",
    ColumnType.INTEGER: "INT64",
    ColumnType.BOOLEAN: "BOOL",
    ColumnType.CATEGORICAL: "BYTES",
    ColumnType.TEXT: "BYTES",
}
ACCEPTED = {
    "FP64": frozenset({"FP64", "FP32"}),
    "INT64": frozenset({"INT64", "INT32", "INT16", "INT8", "UINT32", "UINT16", "UINT8"}),
    "BOOL": frozenset({"BOOL"}),
    "BYTES": frozenset({"BYTES"}),
}
# Binary tensor data: little-endian, row-major; BYTES elements are each prefixed by their
# length (4 bytes, little-endian).
BINARY = {
    "FP64": "<f8",
    "FP32": "<f4",
    "INT64": "<i8",
    "INT32": "<i4",
    "INT16": "<i2",
    "INT8": "i1",
    "UINT32": "<u4",
    "UINT16": "<u2",
    "UINT8": "u1",
    "BOOL": "?",
}
PREDICTIONS, PROBABILITIES = "predictions", "probabilities"
ID_DATATYPES = frozenset({"BYTES", *ACCEPTED["INT64"]})

# What the protocol allows as a parameter's value.
Parameters = dict[str, StrictBool | int | float | StrictStr]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestInput(_Strict):
    name: StrictStr
    shape: list[Annotated[int, Field(strict=True, ge=0)]]
    datatype: StrictStr
    parameters: Parameters | None = None
    data: list[Any] | None = None


class RequestOutput(_Strict):
    name: StrictStr
    parameters: Parameters | None = None


class InferenceRequest(_Strict):
    id: StrictStr | None = None
    # KServe's client repeats the model's name in the body; the path chooses the model.
    model_name: StrictStr | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[bool | int | float | str]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    outputs: list[ResponseOutput]


class ProtocolError(ValueError):
    """A request the protocol or the contract refuses (400); the message names the input."""


_ENVELOPE = TypeAdapter(InferenceRequest)


def datatype(column: Column, is_id: bool = False) -> str:
    return "BYTES" if is_id else DECLARED[column.type]


class V2Codec:
    """One request's tensors, read and checked, and how its answer is written: what
    `PredictService.score` takes as its `codec` (the /predict JSON codec is the other)."""

    def __init__(self, protocol: V2Protocol, header_length: int | None) -> None:
        self.protocol = protocol
        self.header_length = header_length
        self.outputs: tuple[str, ...] = protocol.outputs
        self.request_id: str | None = None

    def parse(self, body: bytes) -> Any:
        """The request as the contract's columns, validated as /predict validates a columnar
        body: a ValidationError names the column (an input) and the rule."""
        columns = self.protocol.read(self, body)
        return self.protocol.types.adapter.validate_python({"columns": columns})

    def refusal(self, errors: list[ErrorDetails]) -> tuple[int, bytes]:
        return 400, error_body("; ".join(_describe(error) for error in errors))

    def answer(
        self,
        request_id: str,
        model: LoadedModel,
        result: Prediction,
        labels: list[Any],
        ids: list[Any] | None,
    ) -> bytes:
        rows = len(labels)
        outputs: list[dict[str, Any]] = []
        for name in self.outputs:
            if name == PREDICTIONS:
                kind = result.predictions.dtype.kind
                outputs.append(
                    {"name": name, "shape": [rows], "datatype": _LABEL_TYPES[kind], "data": labels}
                )
            elif result.probabilities is not None:
                outputs.append(
                    {
                        "name": name,
                        "shape": list(result.probabilities.shape),
                        "datatype": "FP64",
                        "parameters": {"classes": model.classes},
                        "data": result.probabilities.ravel(),
                    }
                )
        return orjson.dumps(
            {
                "model_name": model.name,
                "model_version": model.version,
                "id": self.request_id or request_id,
                "outputs": outputs,
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )


# numpy's kind of the predicted labels: the classes as the contract gives them, or values.
_LABEL_TYPES = {"i": "INT64", "u": "INT64", "f": "FP64", "b": "BOOL", "U": "BYTES", "O": "BYTES"}


def error_body(message: str) -> bytes:
    """The protocol's error object."""
    return orjson.dumps({"error": message})


def _describe(error: ErrorDetails) -> str:
    # loc: ("columnar", "columns", <input>, <row>) for a value, shorter for the whole batch.
    where = [part for part in error["loc"] if part not in ("columnar", "columns")]
    if not where:
        return str(error["msg"])
    name = f"input '{where[0]}'"
    return f"{name} row {where[1]}: {error['msg']}" if len(where) > 1 else f"{name}: {error['msg']}"


class V2Protocol:
    """The tensors of one contract: built once at start-up, like the request types."""

    def __init__(self, contract: Contract, types: RequestTypes) -> None:
        self.types = types
        self.features = tuple(contract.features)
        self.datatypes = {column.name: DECLARED[column.type] for column in contract.described}
        if contract.id is not None:
            self.datatypes[contract.id] = "BYTES"
        self.required = tuple(c.name for c in contract.features if not c.nullable)
        # An FP64 tensor has no null: NaN is a nullable numeric column's missing value.
        self.nan_is_null = frozenset(
            c.name for c in contract.described if c.nullable and c.type is ColumnType.NUMERIC
        )
        self.id_name = contract.id
        classifier = contract.target.is_classification
        self.outputs = (PREDICTIONS, PROBABILITIES) if classifier else (PREDICTIONS,)

    def metadata(self, model: LoadedModel, versions: list[str]) -> ModelMetadata:
        inputs = [
            MetadataTensor(name=column.name, datatype=DECLARED[column.type], shape=[-1])
            for column in self.features
        ]
        outputs = [MetadataTensor(name=PREDICTIONS, datatype=_predictions_type(model), shape=[-1])]
        if model.classes is not None:
            shape = [-1, len(model.classes)]
            outputs.append(MetadataTensor(name=PROBABILITIES, datatype="FP64", shape=shape))
        return ModelMetadata(
            name=model.name,
            versions=versions,
            platform=str(model.metadata.get("scorer", "scikit-learn")),
            inputs=inputs,
            outputs=outputs,
        )

    def request_schema(self) -> dict[str, Any]:
        """The JSON Schema of an inference request (the OpenAPI document's): the inputs in one
        order, required features first, so that every prefix at least that long is valid."""
        columns = self.types.columns.model_json_schema()["properties"]
        order = sorted(self.datatypes, key=lambda name: name not in self.required)
        parameters = {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        }
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "model_name": {"type": "string"},
                "parameters": parameters,
                "inputs": {
                    "type": "array",
                    "prefixItems": [self._tensor_schema(name, columns[name]) for name in order],
                    # maxItems, not `items: false`: the same bound, and what OpenAPI client
                    # generators parse (openapi-python-client refuses a boolean schema).
                    "minItems": len(self.required),
                    "maxItems": len(order),
                },
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name"],
                        "properties": {
                            "name": {"enum": list(self.outputs)},
                            "parameters": parameters,
                        },
                    },
                },
            },
        }

    def _tensor_schema(self, name: str, column: dict[str, Any]) -> dict[str, Any]:
        # A nullable column's schema is anyOf [array, null]: its values are the array's.
        values = next(s for s in column.get("anyOf", [column]) if s.get("type") == "array")
        accepted = ID_DATATYPES if name == self.id_name else ACCEPTED[self.datatypes[name]]
        rows = {"type": "integer", "minimum": 1, "maximum": values["maxItems"]}
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"const": name},
                "shape": {
                    "type": "array",
                    "prefixItems": [rows, {"const": 1}],
                    "minItems": 1,
                    "maxItems": 2,
                },
                "datatype": {"enum": sorted(accepted)},
                "data": {**values, "minItems": 1},
            },
        }

    def codec(self, header_length: int | None) -> V2Codec:
        return V2Codec(self, header_length)

    def read(self, codec: V2Codec, body: bytes) -> dict[str, list[Any]]:
        """The inputs as columns, each checked for its name, datatype and shape."""
        header, binary = _split(body, codec.header_length)
        try:
            request = _ENVELOPE.validate_json(header)
        except _ValidationError as exc:
            found = exc.errors(include_url=False)
            raise ProtocolError(
                "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in found)
            ) from None
        codec.request_id = request.id
        if request.outputs is not None:
            codec.outputs = self._requested(request.outputs)
        columns: dict[str, list[Any]] = {}
        rows: tuple[str, int] | None = None
        offset = 0
        for tensor in request.inputs:
            values, offset = self._values(tensor, binary, offset)
            if rows is not None and len(values) != rows[1]:
                raise ProtocolError(
                    f"input '{tensor.name}' has {len(values)} rows, input '{rows[0]}' "
                    f"has {rows[1]}: every input needs one value a row"
                )
            rows = rows or (tensor.name, len(values))
            columns[tensor.name] = values
        missing = [name for name in self.required if name not in columns]
        if missing:
            listed = ", ".join(f"'{name}'" for name in missing)
            raise ProtocolError(f"input {listed} missing: the model needs every feature")
        return columns

    def _requested(self, outputs: list[RequestOutput]) -> tuple[str, ...]:
        names = [output.name for output in outputs]
        for name in names:
            if name not in self.outputs:
                known = ", ".join(self.outputs)
                raise ProtocolError(f"output '{name}': the model has no such output ({known})")
        return tuple(dict.fromkeys(names))

    def _values(self, tensor: RequestInput, binary: bytes, offset: int) -> tuple[list[Any], int]:
        name = tensor.name
        declared = self.datatypes.get(name)
        if declared is None:
            known = ", ".join(self.datatypes)
            raise ProtocolError(f"input '{name}': the model has no such input ({known})")
        accepted = ID_DATATYPES if name == self.id_name else ACCEPTED[declared]
        if tensor.datatype not in accepted:
            raise ProtocolError(
                f"input '{name}': datatype {tensor.datatype}, the contract's column is {declared}"
            )
        shape = tensor.shape
        if not 1 <= len(shape) <= 2 or shape[0] < 1 or shape[1:] not in ([], [1]):
            raise ProtocolError(f"input '{name}': shape {shape}, a column is [n] or [n, 1]")
        size = math.prod(shape)
        binary_size = (tensor.parameters or {}).get("binary_data_size")
        if tensor.data is not None:
            values = _flat(tensor.data)
        elif isinstance(binary_size, int) and not isinstance(binary_size, bool):
            chunk = binary[offset : offset + binary_size]
            if len(chunk) != binary_size:
                raise ProtocolError(f"input '{name}': {binary_size} bytes of data announced")
            values = _from_binary(name, tensor.datatype, chunk)
            offset += binary_size
        else:
            raise ProtocolError(f"input '{name}': no data")
        if name in self.nan_is_null:
            values = [None if value != value else value for value in values]
        if len(values) != size:
            given = len(values)
            raise ProtocolError(f"input '{name}': shape {shape} holds {size} values, not {given}")
        return values, offset


def _predictions_type(model: LoadedModel) -> str:
    if model.classes is None:
        return "FP64"
    return _LABEL_TYPES[np.asarray(model.classes).dtype.kind]


def _split(body: bytes, header_length: int | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not 0 < header_length <= len(body):
        raise ProtocolError(
            f"Inference-Header-Content-Length {header_length}: the body has {len(body)} bytes"
        )
    return body[:header_length], body[header_length:]


def _flat(data: list[Any]) -> list[Any]:
    """Row-major data, flat or nested one level ([[v], [v]] for shape [n, 1])."""
    if data and all(isinstance(value, list) for value in data):
        return [value for row in data for value in row]
    return data


def _from_binary(name: str, datatype: str, chunk: bytes) -> list[Any]:
    if datatype != "BYTES":
        dtype = np.dtype(BINARY[datatype])
        if len(chunk) % dtype.itemsize:
            raise ProtocolError(f"input '{name}': {len(chunk)} bytes is no whole {datatype} array")
        values: list[Any] = np.frombuffer(chunk, dtype).tolist()
        return values
    strings: list[Any] = []
    offset = 0
    while offset < len(chunk):
        length = int.from_bytes(chunk[offset : offset + 4], "little")
        element = chunk[offset + 4 : offset + 4 + length]
        if offset + 4 > len(chunk) or len(element) != length:
            raise ProtocolError(f"input '{name}': BYTES data cut short")
        try:
            strings.append(element.decode())
        except UnicodeDecodeError:
            message = f"input '{name}': BYTES element {len(strings)} is not UTF-8"
            raise ProtocolError(message) from None
        offset += 4 + length
    return strings
