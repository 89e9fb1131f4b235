from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
import yaml
from support import contract_file_for, merge
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import Params
from {{ cookiecutter.package_name }}.registry import gate_reasons
from {{ cookiecutter.package_name }}.schema import Contract, TaskKind
from {{ cookiecutter.package_name }}.trees import TREELITE_FILE

LOOSE_FAIRNESS = {"fairness": {"max_gap": {"equalized_odds_difference": 1.0}}}
FAIR = {"gender": {"gaps": {"demographic_parity_difference": 0.05}}}


def _run(*command: str) -> str:
    result = CliRunner().invoke(app, list(command))
    assert result.exit_code == 0, result.output
    return result.output


def _audit(project: Path) -> list[dict[str, object]]:
    lines = (project / "reports" / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_promotion_then_rejection_then_export(
    mlflow_store: str, make_project: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    names = {"registry": {"model_name": "test-gate"}, "tracking": {"experiment_name": "test-gate"}}
    binary = contract_file_for("binary", tmp_path_factory.mktemp("contract"))
    project = make_project(merge(names, LOOSE_FAIRNESS), contract_file=binary)
    for stage in ("make-sample", "split", "train", "evaluate"):
        _run(stage)

    assert "v1: promoted" in _run("register")
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("test-gate", "champion").version) == "1"
    card = (project / "reports" / "model_card.md").read_text()
    sections = re.findall(r"^## (.+)$", card, flags=re.MULTILINE)
    assert sections == [
        "Intended use",
        "Out of scope",
        "Training data",
        "Model",
        "Metrics (test set)",
        "Fairness",
        "Explanations",
        "Promotion decision",
        "Limitations",
        "Lineage",
        "Human oversight",
        "Contact",
    ]
    # What the service refuses, from the contract: each feature's allowed values.
    for column in Contract.load(binary).features:
        assert f"  - {column.name}: " in card
    assert card.rstrip().endswith("<{{ cookiecutter.author_email }}>")

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["promotion"]["binary"]["min"]["roc_auc"] = 0.999
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    output = _run("register")
    assert "v2: rejected" in output
    assert "roc_auc" in output
    assert str(client.get_model_version_by_alias("test-gate", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("test-gate", "challenger").version) == "2"

    audit = _audit(project)
    assert [entry["outcome"] for entry in audit] == ["promoted", "rejected"]
    assert audit[1]["champion_before"] == "1"
    assert audit[1]["champion_metrics_now"] is not None
    assert all(entry["decided_by"] and entry["decided_at"] for entry in audit)
    tags = client.get_model_version("test-gate", "2").tags
    assert tags["decision"] == "rejected"
    assert {"git_commit", "data_hash", "params_hash", "metric.roc_auc"} <= set(tags)

    # CD's export: another version than the release names is refused before anything is written.
    exported, outputs = project / "exported", project / "github_output"
    release = ["export-model", "--dest", str(exported), "--github-output", str(outputs)]
    result = CliRunner().invoke(app, [*release, "--expect-version", "2"])
    assert result.exit_code == 1
    assert "the registry's champion is v1, not v2: move the 'champion' alias first" in result.stderr
    assert not exported.exists()
    assert not outputs.exists()
    result = CliRunner().invoke(app, [*release, "--expect-version", "1"])
    assert result.exit_code == 0, result.output
    assert outputs.read_text() == "version=1\n"
    # The one warning an export may give here: no C compiler to build the trees' library.
    no_compiler = "warning: the trees are not compiled (no: no C compiler"
    said = [line for line in result.stderr.splitlines() if not line.startswith(no_compiler)]
    assert not [line for line in said if "warning" in line]
    assert len(said) < len(result.stderr.splitlines()) or shutil.which("gcc") is not None
    assert (exported / "model" / "MLmodel").is_file()
    assert (exported / TREELITE_FILE).is_file()
    assert Contract.load(exported / "schema.yaml").target.kind is TaskKind.BINARY
    metadata = json.loads((exported / "metadata.json").read_text())
    assert metadata["version"] == "1"
    assert metadata["alias"] == "champion"
    assert metadata["classes"] == [0, 1]
    assert set(metadata) >= {"run_id", "git_commit", "data_hash", "params_hash", "trained_at"}
    assert "roc_auc" in metadata["metrics"]
    assert metadata["scorer"] == "treelite"

    # A version by number (a canary), with the aliases the registry gave it.
    canary = project / "canary"
    result = CliRunner().invoke(app, ["export-model", "--version", "2", "--to", str(canary)])
    assert result.exit_code == 0, result.output
    metadata = json.loads((canary / "metadata.json").read_text())
    assert (metadata["version"], metadata["alias"]) == ("2", "challenger")
    result = CliRunner().invoke(app, ["export-model", "--version", "9", "--to", str(canary)])
    assert result.exit_code == 1
    assert "'test-gate' has no version 9 to export" in result.stderr

    # Without the test split to check treelite on, the export says so and serves scikit-learn.
    params["data"]["processed_dir"] = "nowhere"
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, ["export-model", "--dest", str(exported)])
    assert result.exit_code == 0, result.output
    assert "warning: no treelite fast path" in result.stderr
    assert "no rows to check treelite against: nowhere/test.parquet" in result.stderr
    assert not (exported / TREELITE_FILE).exists()
    assert json.loads((exported / "metadata.json").read_text())["scorer"].startswith("sklearn (")


def test_export_without_champion_is_a_clear_error(
    mlflow_store: str, make_project: Callable[..., Path]
) -> None:
    make_project({"registry": {"model_name": "never-trained"}})
    result = CliRunner().invoke(app, ["export-model"])
    assert result.exit_code == 1
    assert "'never-trained' has no 'champion' version" in result.stderr


def test_a_challenger_worse_than_the_champion_is_rejected(
    params: Params, binary_contract: Contract
) -> None:
    contract = binary_contract
    metrics = {"roc_auc": 0.80, "pr_auc": 0.6}
    passed, reasons = gate_reasons(metrics, {"roc_auc": 0.85}, FAIR, contract, params)
    assert not passed
    assert any("beyond tolerance" in reason for reason in reasons)
    passed, reasons = gate_reasons(metrics, {"roc_auc": 0.803}, FAIR, contract, params)
    assert passed
    assert any("worse within tolerance" in reason for reason in reasons)


def test_an_unfair_model_is_rejected(params: Params, binary_contract: Contract) -> None:
    contract = binary_contract
    unfair = {"gender": {"gaps": {"demographic_parity_difference": 0.5}}}
    passed, reasons = gate_reasons({"roc_auc": 0.9, "pr_auc": 0.7}, None, unfair, contract, params)
    assert not passed
    assert "fairness gap too large: gender: demographic_parity_difference 0.500 > 0.2" in reasons
