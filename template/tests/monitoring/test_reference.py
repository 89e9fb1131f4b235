"""The reference is the champion's own training data, found through its lineage, or an error
that says what was looked for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.config import load_params
from {{ cookiecutter.package_name }}.data import make_sample, write_table
from {{ cookiecutter.package_name }}.monitoring.reference import LineageError, contract_changes, load_reference
from {{ cookiecutter.package_name }}.schema import Contract

from .conftest import CHAMPION, RAW, md5

TRAIN = Path("data/processed/train.parquet")


def reference(project: Path) -> tuple[pd.DataFrame, str]:
    found = load_reference(project / CHAMPION, load_params(project / "params.yaml"))
    return found.table, found.source


def data_hash(project: Path) -> str:
    return str(json.loads((project / CHAMPION / "metadata.json").read_text())["data_hash"])


def cache_entry(project: Path, md5_hash: str) -> Path:
    return project / ".dvc/cache/files/md5" / md5_hash[:2] / md5_hash[2:]


def test_the_dvc_cache_entry_of_the_data_hash(project: Path, contract: Contract) -> None:
    # Another table at data.raw (the data moved on since training) must not be used.
    write_table(make_sample(contract, 50, seed=5), project / RAW)
    table, source = reference(project)
    assert len(table) == 600
    assert data_hash(project) in source


def test_the_raw_table_when_its_md5_matches(project: Path) -> None:
    cached = cache_entry(project, data_hash(project))
    (project / RAW).parent.mkdir(parents=True, exist_ok=True)
    shutil.move(cached, project / RAW)
    table, source = reference(project)
    assert len(table) == 600
    assert source.startswith(str(RAW))


def test_the_train_split_through_dvc_lock(project: Path, contract: Contract) -> None:
    raw_hash = data_hash(project)
    cache_entry(project, raw_hash).unlink()
    train = make_sample(contract, 450, seed=1)
    write_table(train, project / TRAIN)
    manifest = [{"md5": md5(project / TRAIN), "relpath": "train.parquet"}]
    manifest_path = cache_entry(project, "ab" + "c" * 30 + ".dir")
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest))
    lock = {
        "stages": {
            "split": {
                "deps": [{"path": str(RAW), "md5": raw_hash}],
                "outs": [{"path": "data/processed", "md5": "ab" + "c" * 30 + ".dir"}],
            }
        }
    }
    (project / "dvc.lock").write_text(yaml.safe_dump(lock))
    table, source = reference(project)
    assert len(table) == 450
    assert "dvc.lock" in source
    # A split written since (other bytes than DVC recorded) is not the champion's.
    write_table(make_sample(contract, 450, seed=2), project / TRAIN)
    with pytest.raises(LineageError, match="not here"):
        reference(project)


def test_missing_reference_names_what_was_looked_for(project: Path) -> None:
    raw_hash = data_hash(project)
    cache_entry(project, raw_hash).unlink()
    with pytest.raises(LineageError) as error:
        reference(project)
    message = str(error.value)
    assert raw_hash in message
    assert ".dvc/cache/files/md5" in message
    assert str(RAW) in message
    assert "dvc pull" in message


def test_no_exported_champion(project: Path) -> None:
    shutil.rmtree(project / CHAMPION)
    with pytest.raises(LineageError, match="make export-model"):
        reference(project)


def test_a_changed_contract_names_the_columns(project: Path) -> None:
    contract_path = project / "schema.yaml"
    document = yaml.safe_load(contract_path.read_text())
    features = [f for f in document["features"] if f["name"] != "owns_home"]
    features[0] = {**features[0], "type": "numeric"}
    features.append({"name": "debt_ratio", "type": "numeric"})
    contract_path.write_text(yaml.safe_dump({**document, "features": features}))
    with pytest.raises(LineageError) as error:
        reference(project)
    message = str(error.value)
    assert "added: debt_ratio" in message
    assert "removed: owns_home" in message
    assert f"retyped: {features[0]['name']}" in message


def test_changed_categories_are_a_change(contract: Contract) -> None:
    document = contract.model_dump(mode="json")
    for feature in document["features"]:
        if feature["categories"]:
            feature["categories"] = [*feature["categories"], "new"]
            name = feature["name"]
    changes = contract_changes(contract, Contract.model_validate(document))
    assert [change.split(":")[0] for change in changes] == [f"categories of {name}"]
    assert contract_changes(contract, contract) == []
