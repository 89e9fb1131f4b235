"""`validate --engine spark`: the contract's Great Expectations suite on a Spark DataFrame.

The same expectations, built by validation.py from the same contract and parameters; GX
computes their metrics on the cluster. Only the type names differ: GX checks a Spark column
by its Spark type (LongType, not int64), so messages about a wrong type name those.
"""

from __future__ import annotations

from ..config import ValidationParams
from ..schema import Contract
from ..validation import TypeNames, ValidationReport, build_expectations, run_suite
from .session import spark_session
from .tables import no_rows, read_table

_INTEGER = ["ByteType", "ShortType", "IntegerType", "LongType"]
SPARK_TYPES = TypeNames(
    integer=_INTEGER,
    floating=["FloatType", "DoubleType", "DecimalType"],
    string=["StringType"],
    boolean=["BooleanType", *_INTEGER],
)


def validate_on_spark(
    path: str, contract: Contract, params: ValidationParams, master: str | None
) -> ValidationReport:
    expectations = build_expectations(contract, params, SPARK_TYPES)
    with spark_session(master, "validate") as spark:
        frame = read_table(spark, path)
        rows = frame.count()
        if not rows:
            raise no_rows(path)
        return run_suite("spark", frame, rows, frame.columns, expectations, contract, path)
