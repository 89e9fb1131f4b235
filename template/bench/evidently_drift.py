"""evidently's DataDriftPreset on bench/drift.py's tables, in evidently's own environment.

bench/drift.py runs this with `uv run --no-project --with evidently==0.7.23 --with
pandas==3.0.6`: evidently 0.7.23 does not import with the project's pandas 3.1 and weighs
about 700 MB, so it never enters the project's groups. Reads <folder>/reference.parquet,
current.parquet and columns.json; prints one JSON object: the seconds the preset took (the
tables already in memory, as on our side) and each column's method, value and verdict.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main(folder: Path) -> None:
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    kinds = json.loads((folder / "columns.json").read_text())
    definition = DataDefinition(
        numerical_columns=kinds["numeric"], categorical_columns=kinds["categorical"]
    )
    started = time.perf_counter()
    result = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - started
    columns = {}
    for metric in result.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            value = float(metric["value"])
            columns[config["column"]] = {
                "method": config["method"],
                "value": value,
                # evidently's distance tests: drift when the distance reaches the threshold.
                "drifted": value >= config["threshold"],
            }
    print(json.dumps({"seconds": seconds, "columns": columns}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
