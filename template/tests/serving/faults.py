"""A prediction log written through a write failure, as a service process meets one: a file
size limit (RLIMIT_FSIZE, no root needed) makes its writes fail with EFBIG, then is lifted."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME

# Writes the records in three parts: before the limit, under it, after it is lifted.
_WRITER = """
import json, os, resource, sys, time
from pathlib import Path
from {{ cookiecutter.package_name }}.serving.prediction_log import LOG_FILE_NAME, PredictionLog

directory, level = Path(sys.argv[1]), sys.argv[2]
parts = json.loads(Path(sys.argv[3]).read_text())
lost = []
log = PredictionLog(
    directory,
    max_bytes=1 << 30,
    backups=0,
    queue_size=10_000,
    durability=level,
    on_drop=lambda reason, records: lost.append([reason, records]),
)
log.start()
answered = []

def write(records):
    for record in records:
        log.append(record)
        answered.append(record["request_id"])
    time.sleep(0.2)  # `queued`: the writer takes them

write(parts[0])
size = (directory / LOG_FILE_NAME).stat().st_size
# Room for about one and a half lines: the next write goes in part way, then fails.
room = size // max(len(parts[0]), 1) * 3 // 2
resource.setrlimit(resource.RLIMIT_FSIZE, (size + room, resource.RLIM_INFINITY))
write(parts[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
write(parts[2])
log.close()
print(json.dumps({"answered": answered, "lost": lost}))
"""


@dataclass(frozen=True)
class Starved:
    answered: list[str]  # every request id handed to the log, in order
    lost: list[tuple[str, int]]  # each on_drop call: reason, records
    log: Path  # predictions.jsonl
    messages: str  # what the log's logger said (stderr)

    def lines(self) -> list[bytes]:
        return self.log.read_bytes().splitlines(keepends=True)


def starve(directory: Path, level: str, parts: list[list[dict[str, Any]]]) -> subprocess.Popen[str]:
    """Start writing `parts` (before, under and after the limit) to `directory` at `level`
    in a process of its own; `finish` waits for it."""
    directory.mkdir(parents=True, exist_ok=True)
    records = directory.with_name(directory.name + "-records.json")
    records.write_bytes(orjson.dumps(parts, option=orjson.OPT_SERIALIZE_NUMPY))
    command = [sys.executable, "-c", _WRITER, str(directory), level, str(records)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(writer: subprocess.Popen[str], directory: Path) -> Starved:
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    report = json.loads(out.splitlines()[-1])
    lost = [(reason, records) for reason, records in report["lost"]]
    return Starved(report["answered"], lost, directory / LOG_FILE_NAME, err)
