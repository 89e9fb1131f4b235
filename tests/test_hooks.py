"""The post-generation hook is plain Python: test it directly."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from blueprint import ROOT, run


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "post_gen", ROOT / "hooks" / "post_gen_project.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prune_removes_nested_empty_folders_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "file.txt").write_text("x")
    load_hook().prune_empty_dirs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_first_commit_signs_with_the_project_author_and_runs_once(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nauthors = [{ name = "Ada", email = "ada@example.com" }]\n'
    )
    hook = load_hook()
    assert not hook.inside_git_repo(tmp_path)
    hook.first_commit(tmp_path)
    assert hook.inside_git_repo(tmp_path)
    log = run(["git", "log", "--format=%s"], tmp_path).stdout
    assert log.strip() == "Initial commit from mlops-blueprint"


def answers(**overrides: object) -> dict[str, object]:
    base = {
        "package_name": "credit_risk",
        "include_serving": True,
        "include_monitoring": True,
        "deployment": "kubernetes",
        "scale_out": "spark",
    }
    return {**base, "ci": "github", **overrides}


def test_each_optional_part_is_removed_when_left_out_and_only_then() -> None:
    hook = load_hook()
    assert hook.unwanted(answers()) == []
    nothing = answers(
        include_serving="false",
        include_monitoring="false",
        deployment="none",
        ci="none",
        scale_out="none",
    )
    assert hook.unwanted(nothing) == [
        "src/credit_risk/delivery/manifests.py",
        "src/credit_risk/monitoring/spark.py",
        "src/credit_risk/delivery/slots.py",
        "tests/serving/test_v2_kserve.py",
        "tests/monitoring/test_spark.py",
        "tests/deploy/test_spark_job.py",
        ".github/workflows/retrain.yml",
        "tests/delivery/test_slots.py",
        "src/credit_risk/monitoring",
        "src/credit_risk/delivery",
        ".github/workflows/cd.yml",
        "bench/evidently_drift.py",
        "src/credit_risk/serving",
        "src/credit_risk/spark",
        "bench/check_image.py",
        "deploy/compose.yaml",
        "tests/monitoring",
        "deploy/k8s/spark",
        "tests/delivery",
        "bench/drift.py",
        "bench/spark.py",
        "tests/serving",
        ".dockerignore",
        "deploy/kserve",
        "deploy/stack",
        "tests/deploy",
        "tests/spark",
        "Dockerfile",
        "deploy/k8s",
        "monitoring",
        ".github",
        "bench",
    ]
    # The Spark part owns its modules inside the monitoring and kubernetes parts' folders.
    assert hook.unwanted(answers(scale_out="none")) == [
        "src/credit_risk/monitoring/spark.py",
        "tests/monitoring/test_spark.py",
        "tests/deploy/test_spark_job.py",
        "src/credit_risk/spark",
        "deploy/k8s/spark",
        "bench/spark.py",
        "tests/spark",
    ]
    # The monitoring part owns its benchmarks inside the serving part's folder.
    assert hook.unwanted(answers(include_monitoring="false")) == [
        ".github/workflows/retrain.yml",
        "src/credit_risk/monitoring",
        "bench/evidently_drift.py",
        "tests/monitoring",
        "bench/drift.py",
        "monitoring",
    ]
    # The container part owns its files inside the serving part's folder; kubernetes is a
    # deployment too.
    assert hook.unwanted(answers(deployment="none")) == [
        "src/credit_risk/delivery/manifests.py",
        "src/credit_risk/delivery/slots.py",
        "tests/serving/test_v2_kserve.py",
        "tests/delivery/test_slots.py",
        ".github/workflows/cd.yml",
        "bench/check_image.py",
        "deploy/compose.yaml",
        ".dockerignore",
        "deploy/kserve",
        "deploy/stack",
        "tests/deploy",
        "Dockerfile",
        "deploy/k8s",
    ]


def test_remove_parts_deletes_files_and_the_folders_they_leave_empty(tmp_path: Path) -> None:
    kept = ("bench/bench.py", "src/p/cli.py", "src/p/serving/app.py")
    for name in (*kept, "bench/check_image.py", "Dockerfile", "src/empty/.keep"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "src" / "empty" / ".keep").unlink()
    load_hook().remove_parts(tmp_path, answers(package_name="p", deployment="none"))
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted(kept)
    assert not (tmp_path / "src" / "empty").exists()


def test_answers_come_from_the_first_argument_or_the_rendered_line() -> None:
    hook = load_hook()
    assert hook.read_answers(["hook.py", '{"ci": "none"}']) == {"ci": "none"}
    assert hook.RENDERED == "{{ cookiecutter | tojson }}"  # rendered by cookiecutter only
