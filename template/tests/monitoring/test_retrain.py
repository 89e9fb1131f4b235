"""retrain: the inbox's rows reach the raw table once per id (real DVC), a bad file changes
nothing and names the column and the rule, and a second retrain finds the first running."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import Params, load_params
from {{ cookiecutter.package_name }}.data import make_sample, read_table, write_table
from {{ cookiecutter.package_name }}.monitoring.retrain import (
    InvalidDataError,
    absorb_inbox,
    dvc,
    reload_service,
)
from {{ cookiecutter.package_name }}.monitoring.trigger import acquire_lock
from {{ cookiecutter.package_name }}.schema import Contract


def _setup(make_project: Callable[..., Path], contract: Contract) -> Params:
    make_project()
    params = load_params()
    write_table(make_sample(contract, params.sample.rows, params.sample.seed), params.data.raw)
    return params


def _drop(params: Params, name: str, table: pd.DataFrame) -> Path:
    path = params.monitoring.retrain.inbox / name
    write_table(table, path)
    return path


def _new_rows(contract: Contract, first_id: int, rows: int = 30) -> pd.DataFrame:
    table = make_sample(contract, rows, seed=first_id)
    assert contract.id is not None
    table[contract.id] = range(first_id, first_id + rows)
    return table


def test_inbox_rows_join_the_raw_table_once_per_id(
    make_project: Callable[..., Path], contract: Contract
) -> None:
    params = _setup(make_project, contract)
    assert contract.id is not None
    raw = params.data.raw
    # What `dvc init --no-scm` writes, without its start-up cost.
    Path(".dvc").mkdir()
    Path(".dvc/config").write_text("[core]\n    no_scm = true\n")
    dvc("add", "-q", str(raw))
    tracked = raw.with_name(raw.name + ".dvc").read_text()
    old = read_table(raw)
    # Rows 1 and 2 again with new values (the new ones win), then 29 new ids.
    update = _new_rows(contract, 10_000, 31)
    update.loc[:1, contract.id] = [1, 2]
    update.loc[:1, "age"] = [77, 78]
    first = _drop(params, "a.csv", update)
    second = _drop(params, "b.parquet", _new_rows(contract, 20_000))

    summary = absorb_inbox(params, print)

    table = read_table(raw)
    assert summary["rows_added"] == 29 + 30
    assert summary["rows_replaced"] == 2
    assert len(table) == len(old) + 59
    assert table[contract.id].is_unique
    assert table.set_index(contract.id).loc[[1, 2], "age"].tolist() == [77, 78]
    assert raw.with_name(raw.name + ".dvc").read_text() != tracked  # re-tracked
    done = list((params.monitoring.retrain.inbox / "done").glob("*/*"))
    assert sorted(path.name for path in done) == [first.name, second.name]
    assert not first.exists()
    assert not second.exists()
    # A second run has nothing to append.
    assert absorb_inbox(params, print)["rows_added"] == 0
    assert len(read_table(raw)) == len(table)


def test_a_bad_file_names_the_column_and_changes_nothing(
    make_project: Callable[..., Path], contract: Contract
) -> None:
    params = _setup(make_project, contract)
    raw_before = params.data.raw.read_bytes()
    good = _drop(params, "good.csv", _new_rows(contract, 10_000))
    bad_rows = _new_rows(contract, 20_000)
    bad_rows.loc[3, "age"] = 150
    bad = _drop(params, "bad.csv", bad_rows)

    with pytest.raises(InvalidDataError) as error:
        absorb_inbox(params, print)

    assert "column 'age': expect_column_values_to_be_between" in str(error.value)
    assert params.data.raw.read_bytes() == raw_before
    assert not params.data.raw.with_name(params.data.raw.name + ".dvc").exists()
    assert good.exists()  # waits for the next retrain
    rejected = params.monitoring.retrain.inbox / "rejected"
    (moved,) = rejected.glob(f"*/{bad.name}")
    assert "'age'" in moved.with_name(bad.name + ".reason.txt").read_text()


def test_the_command_fails_on_bad_data_and_audits_it(
    make_project: Callable[..., Path], contract: Contract
) -> None:
    params = _setup(make_project, contract)
    _drop(params, "bad.csv", _new_rows(contract, 10_000).drop(columns=["age"]))
    report = Path("drift.json")
    report.write_text(json.dumps({"verdict": "drift", "drifted_features": ["age"]}))

    result = CliRunner().invoke(app, ["retrain", "--reason", "drift", "--report", str(report)])

    assert result.exit_code == 1
    assert "missing ['age']" in result.stderr
    (entry,) = [json.loads(line) for line in Path("reports/audit.jsonl").read_text().splitlines()]
    assert entry["event"] == "retrain"
    assert entry["reason"] == "drift"
    assert entry["report"]["drifted_features"] == ["age"]
    assert entry["outcome"] == "invalid_data"


def test_a_second_retrain_is_already_running(make_project: Callable[..., Path]) -> None:
    make_project()
    lock = acquire_lock()
    try:
        result = CliRunner().invoke(app, ["retrain", "--reason", "manual"])
    finally:
        lock.close()
    assert result.exit_code == 4
    assert "already running" in result.stderr
    assert not Path("reports/audit.jsonl").exists()  # the retrain that runs records itself


def test_no_service_listening_is_not_an_error(unused_port: int) -> None:
    assert reload_service(f"http://127.0.0.1:{unused_port}", "token", timeout=5) is None


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
