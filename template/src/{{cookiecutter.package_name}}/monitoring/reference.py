"""The champion's training data, found through its lineage: never "whatever file is there now".

The exported champion (`models/champion/metadata.json`) records `data_hash`, the MD5 of the
raw table it was trained from, which is the MD5 DVC files it under. In order:

1. the DVC cache entry of that hash (`.dvc/cache/files/md5/<2>/<30>`);
2. the raw table at `data.raw`, if its MD5 is that hash;
3. the train split, if `dvc.lock` says the split stage read that hash: its file, from the
   cache or at its path, is taken only when its MD5 is the one DVC recorded.

The champion also carries the contract it was trained on; a project contract that has since
gained, lost or retyped a column is an error naming them, since the log and the reference
would not describe the same table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..config import Params
from ..data import DataError, read_table
from ..schema import Column, Contract

DVC_CACHE = Path(".dvc/cache/files/md5")
DVC_LOCK = Path("dvc.lock")


class LineageError(ValueError):
    """The champion's reference data cannot be found or no longer fits the contract."""


@dataclass(frozen=True)
class Reference:
    table: pd.DataFrame
    source: str  # where it was found, for the report
    contract: Contract  # the champion's
    metadata: dict[str, Any]  # the champion's metadata.json

    @property
    def version(self) -> str:
        return str(self.metadata["version"])


def load_reference(model_dir: Path, params: Params) -> Reference:
    """The champion's contract, metadata and training table; LineageError says what is wrong."""
    metadata_path = model_dir / "metadata.json"
    if not metadata_path.is_file():
        raise LineageError(f"{metadata_path}: no exported champion; run `make export-model`")
    metadata: dict[str, Any] = json.loads(metadata_path.read_text(encoding="utf-8"))
    contract = Contract.load(model_dir / "schema.yaml")
    changes = contract_changes(contract, Contract.load(params.data.contract))
    if changes:
        raise LineageError(
            f"{params.data.contract} changed since champion v{metadata.get('version')} was "
            f"trained ({'; '.join(changes)}): retrain and export the model before monitoring it"
        )
    data_hash = str(metadata.get("data_hash", "unknown"))
    table, source = _find_table(data_hash, params)
    missing = [name for name in contract.feature_names if name not in table.columns]
    if missing:
        raise LineageError(f"{source}: the reference has no column {', '.join(missing)}")
    return Reference(table, source, contract, metadata)


def contract_changes(trained: Contract, current: Contract) -> list[str]:
    """Columns added, removed or retyped between the champion's contract and the project's."""
    before = _columns(trained)
    after = _columns(current)
    changes = []
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    if added:
        changes.append(f"added: {', '.join(added)}")
    if removed:
        changes.append(f"removed: {', '.join(removed)}")
    for name in (name for name in before if name in after):
        old, new = before[name], after[name]
        if old.type != new.type:
            changes.append(f"retyped: {name} ({old.type} -> {new.type})")
        elif old.categories != new.categories:
            changes.append(f"categories of {name}: {old.categories} -> {new.categories}")
    return changes


def _columns(contract: Contract) -> dict[str, Column]:
    return {column.name: column for column in contract.features}


def _find_table(data_hash: str, params: Params) -> tuple[pd.DataFrame, str]:
    looked = []
    cached = _cache_path(data_hash)
    if cached.is_file():
        return _read(cached), f"{cached} (the DVC cache entry of data_hash {data_hash})"
    looked.append(f"the DVC cache ({cached})")
    raw = params.data.raw
    if raw.is_file() and _md5(raw) == data_hash:
        return _read(raw), f"{raw} (MD5 {data_hash})"
    looked.append(f"{raw} (MD5 {_md5(raw) if raw.is_file() else 'no file'})")
    split = _train_split(data_hash, params)
    if split is not None:
        return _read(split[0]), split[1]
    looked.append(f"the train split of {params.data.processed_dir} in {DVC_LOCK}")
    raise LineageError(
        f"the champion's training data (data_hash {data_hash}) is not here; looked in "
        f"{'; '.join(looked)}. `dvc pull` fetches it from the remote"
    )


def _train_split(data_hash: str, params: Params) -> tuple[Path, str] | None:
    """The train split's file whose lineage in dvc.lock starts at `data_hash`, if any."""
    # Imported here: features.py brings scikit-learn, which only this fallback needs (~1 s).
    from ..features import TRAIN_FILE

    if not DVC_LOCK.is_file():
        return None
    stage = (yaml.safe_load(DVC_LOCK.read_text()) or {}).get("stages", {}).get("split", {})
    read_raw = any(
        dep.get("path") == str(params.data.raw) and dep.get("md5") == data_hash
        for dep in stage.get("deps", [])
    )
    outs = [
        out for out in stage.get("outs", []) if out.get("path") == str(params.data.processed_dir)
    ]
    if not read_raw or not outs:
        return None
    manifest = _cache_path(str(outs[0].get("md5", "")))
    if not manifest.is_file():
        return None
    files = {entry["relpath"]: entry["md5"] for entry in json.loads(manifest.read_text())}
    expected = files.get(TRAIN_FILE)
    if expected is None:
        return None
    why = f"the train split of data_hash {data_hash}, per {DVC_LOCK}"
    for candidate in (_cache_path(expected), params.data.processed_dir / TRAIN_FILE):
        if candidate.is_file() and _md5(candidate) == expected:
            return candidate, f"{candidate} ({why})"
    return None


def _cache_path(md5: str) -> Path:
    return DVC_CACHE / md5[:2] / md5[2:]


def _md5(path: Path) -> str:
    """The MD5 DVC records (tracking.file_md5's, without importing MLflow)."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "md5").hexdigest()


def _read(path: Path) -> pd.DataFrame:
    """A table by its content: DVC's cache entries have no file extension."""
    if path.suffix:
        return read_table(path)
    with path.open("rb") as stream:
        is_parquet = stream.read(4) == b"PAR1"
    try:
        return pd.read_parquet(path) if is_parquet else pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable table: {exc}") from None
