"""`predict --engine spark`: the exported champion scores a table on the cluster's executors.

The export folder (the treelite checkpoint and its compiled library, or the skops model, with
schema.yaml and metadata.json) travels with the job's function, as bytes, and each executor's
Python worker writes it to a temporary folder and loads it once with the serving loader. So
the executors run the same scorer as `predict` and the service, on the same platform: the
compiled library is native code, built for the driver's machine (the project's image).
Each batch goes through `score_table`, the one-process path: the API's contract checks, then
the model. Model name, version and lineage are columns of every scored row.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import functions
from pyspark.sql.types import DataType, DoubleType, LongType, StringType, StructField, StructType

from ..config import UnknownCategories
from ..serving.batch import REASON, missing_features, request_types, score_table
from ..serving.contract_models import RequestTypes
from ..serving.model_store import LoadedModel, load_model_dir
from ..serving.prediction_log import LINEAGE
from .session import spark_session
from .tables import read_table, write_whole

# The model's identity, on every scored row.
IDENTITY = ("model_name", "model_version", *LINEAGE)


@dataclass(frozen=True)
class ModelBundle:
    """An export folder as bytes: what the job's function carries to the executors."""

    files: dict[str, bytes]
    digest: str

    @classmethod
    def read(cls, model_dir: Path) -> ModelBundle:
        files = {
            str(path.relative_to(model_dir)): path.read_bytes()
            for path in sorted(model_dir.rglob("*"))
            if path.is_file()
        }
        digest = hashlib.sha256()
        for name, content in files.items():
            digest.update(name.encode() + b"\0" + content)
        return cls(files, digest.hexdigest())

    def load(self, policy: UnknownCategories) -> tuple[LoadedModel, RequestTypes]:
        """The model and the API's request models, loaded once per executor process."""
        key = (self.digest, policy)
        if key not in _LOADED:
            folder = Path(tempfile.mkdtemp(prefix="model-"))
            for name, content in self.files.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(content)
            model = load_model_dir(folder)
            _LOADED[key] = (model, request_types(model, policy))
        return _LOADED[key]


_LOADED: dict[tuple[str, UnknownCategories], tuple[LoadedModel, RequestTypes]] = {}


def predict_on_spark(
    input_path: str,
    output_path: str,
    rejects_path: str,
    model_dir: Path,
    policy: UnknownCategories,
    master: str | None,
) -> tuple[int, int]:
    """Score `input_path` into `output_path` (partitioned Parquet) and its refused rows, with
    the reason, into `rejects_path`; both appear whole or not at all. Returns their rows."""
    model = load_model_dir(model_dir)  # a missing or broken export fails here, in one line
    bundle = ModelBundle.read(Path(model_dir))
    with spark_session(master, "predict") as spark:
        table = read_table(spark, input_path)
        missing_features(table.columns, model, input_path)
        schema = _scored_schema(table.schema, model)
        both = table.mapInPandas(partial(_score_batches, bundle, policy), schema).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        refused = functions.col(REASON).isNotNull()
        scored = both.filter(~refused).drop(REASON)
        rejects = both.filter(refused).select(*table.columns, REASON)
        outputs = [(scored, output_path), (rejects, rejects_path)]
        rows, rejected = write_whole(spark, outputs, input_path)
        both.unpersist()
        return rows, rejected


def _scored_schema(inputs: StructType, model: LoadedModel) -> StructType:
    label: DataType = DoubleType()
    if model.classes is not None:
        label = LongType() if all(isinstance(c, int) for c in model.classes) else StringType()
    fields = [*inputs.fields, StructField("prediction", label)]
    fields += [StructField(f"probability_{c}", DoubleType()) for c in model.classes or []]
    fields += [StructField(name, StringType()) for name in (*IDENTITY, REASON)]
    return StructType(fields)


def _score_batches(
    bundle: ModelBundle, policy: UnknownCategories, batches: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """On an executor: each batch scored and refused as `predict` does, as one frame."""
    model, types = bundle.load(policy)
    identity = {"model_name": model.name, "model_version": model.version}
    identity |= {key: str(model.metadata.get(key, "unknown")) for key in LINEAGE}
    for batch in batches:
        scored, refused = score_table(model, batch, types)
        scored = scored.assign(**identity, **{REASON: None})
        yield pd.concat([scored, refused], ignore_index=True)
