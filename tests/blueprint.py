"""Helpers the template's tests share: snapshot the template, generate with both tools, run."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

import bytecode

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
QUESTIONS: dict[str, dict[str, Any]] = {
    name: spec
    for name, spec in yaml.safe_load((ROOT / "copier.yml").read_text()).items()
    if not name.startswith("_") and spec.get("when", True) is not False
}
# Template syntax that must never survive rendering; `${{ }}` is a GitHub Actions expression.
# Jinja that survived rendering. `${{` is a GitHub expression; a Go template's action (Vault
# Agent's, in the README) opens with a keyword, `$` or `.`, which no Jinja expression here does.
LEFTOVER = re.compile(r"(?<!\$){{(?!-? *(?:with|range|end|else|\$|\.))|{%|cookiecutter\.")
ENV = {
    **os.environ,
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
    # Generated projects must not reuse the template's own environment.
    "VIRTUAL_ENV": "",
    # The suite makes a dozen environments and runs a few modules of each: compiling every
    # package's bytecode at install (the generated default) costs it minutes (measured).
    "UV_COMPILE_BYTECODE": "0",
    # The generated suites in one process each: the suite's two workers already fill the
    # cores, and a generated suite's own workers would add theirs (each collects and starts its
    # servers: +28% CPU, measured). `make demo`'s project runs the default, on every core.
    "TEST_WORKERS": "0",
}
ENV.pop("VIRTUAL_ENV")
# A pyenv shim that launched the suite pins its own version; projects pick theirs.
for pinned in ("PYENV_VERSION", "PYENV_DIR"):
    ENV.pop(pinned, None)
ENV["PATH"] = os.pathsep.join([str(BIN), ENV.get("PATH", "")])
SKIP_LOCK = "BLUEPRINT_SKIP_LOCK"  # the hook writes no uv.lock: for renders that need none


def run(
    command: list[str], cwd: Path, *, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, env={**ENV, **(env or {})}, capture_output=True, text=True, check=False
    )
    bytecode.after(command, cwd)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed in {cwd} ({done.returncode})\n"
            f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"
        )
    return done


def snapshot_template(dst: Path, tag: str | None = "v0.0.0-test") -> Path:
    """Copy the template as it is in the work tree into a fresh git repo (and tag it).

    copier reads templates from git; a snapshot tests uncommitted work too and never depends
    on the tags or history of the checkout the tests run in.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for relative in filter(None, listed):
        source = ROOT / relative
        (dst / relative).parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # cookiecutter's way into template/
            (dst / relative).symlink_to(source.readlink())
        elif source.is_file():
            shutil.copy2(source, dst / relative)
    run(["git", "init", "--quiet", "--initial-branch=main"], dst)
    commit_all(dst, "template snapshot")
    if tag:
        run(["git", "tag", tag], dst)
    return dst


def commit_all(repo: Path, message: str) -> None:
    run(["git", "add", "--all"], repo)
    run(["git", "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message], repo)


def defaults() -> dict[str, Any]:
    """Answers a user gets by pressing Enter everywhere (derived ones left to the tools)."""
    return {
        name: spec["default"]
        for name, spec in QUESTIONS.items()
        if not (isinstance(spec["default"], str) and "{{" in spec["default"])
    }


def _as_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def copier_copy(
    template: Path,
    dst: Path,
    answers: Mapping[str, Any],
    *,
    ref: str | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "copier"), "copy", "--trust", "--defaults", "--quiet"]
    for name, value in answers.items():
        command += ["--data", f"{name}={_as_text(value)}"]
    if ref:
        command += ["--vcs-ref", ref]
    dst.parent.mkdir(parents=True, exist_ok=True)
    command += [str(template), str(dst)]
    extra = dict(env or {})
    if extra.get(SKIP_LOCK) == "1":
        return run(command, dst.parent, check=check, env=extra)
    return locked_offline(
        lambda offline: run(command, dst.parent, check=check, env={**offline, **extra}),
        lambda: dst,
    )


def cookiecutter(
    template: Path, out: Path, answers: Mapping[str, Any], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "cookiecutter"), "--no-input", "--output-dir", str(out), str(template)]
    command += [f"{name}={_as_text(value)}" for name, value in answers.items()]
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    return locked_offline(
        lambda offline: run(command, out, check=check, env=offline),
        lambda: next(iter(set(out.iterdir()) - before), out / "missing"),
    )


def locked_offline(
    render: Callable[[Mapping[str, str]], subprocess.CompletedProcess[str]],
    project: Callable[[], Path],
) -> subprocess.CompletedProcess[str]:
    """Render with the hook's `uv lock` resolving from uv's cache; online if that cannot.

    Online, `uv lock` revalidates every package's index page: about 3 s of waiting a render,
    for the dozens of renders of a session. The session's first renders fill the cache, and
    the rest resolve from it (0.7 s). A lock that needs what the cache lacks fails offline (the
    hook then writes no uv.lock): that render is made again online.
    """
    done = render({"UV_OFFLINE": "1"})
    made = project()
    if done.returncode != 0 or not made.is_dir() or (made / "uv.lock").is_file():
        return done
    shutil.rmtree(made)
    return render({})


def tree(root: Path, *, skip: tuple[str, ...] = (".git",)) -> dict[str, bytes]:
    """Every file below root, relative path -> bytes, skipping the named top-level entries."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).parts[0] not in skip
    }


def leftovers(root: Path) -> list[str]:
    """Template syntax that survived rendering, as `path: marker` lines."""
    found = []
    for relative, content in tree(root, skip=(".git", ".venv", "uv.lock")).items():
        text = content.decode("utf-8", errors="replace")
        found += [f"{relative}: {m[0]}" for m in LEFTOVER.finditer(f"{relative}\n{text}")]
    return found


# --- the option matrix -------------------------------------------------------------------


def is_valid(answers: Mapping[str, Any]) -> bool:
    """The one place that prunes combinations copier.yml refuses (its validators say why)."""
    if answers["include_monitoring"] and not answers["include_serving"]:
        return False
    if answers["scale_out"] == "spark" and not answers["include_serving"]:
        return False
    return not (answers["deployment"] != "none" and not answers["include_serving"])


def is_fullest(answers: Mapping[str, Any]) -> bool:
    """Every optional part on: the code that holds every module the others have."""
    parts = answers["include_serving"] and answers["include_monitoring"]
    return bool(parts and answers["deployment"] == "kubernetes")


def option_values() -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    for name, spec in QUESTIONS.items():
        if "choices" in spec:
            values[name] = list(spec["choices"])
        elif spec["type"] == "bool":
            values[name] = [True, False]
    return values


def matrix() -> list[dict[str, Any]]:
    """Answer sets covering every valid pair of option values (all-pairs, greedy).

    The full product is over a thousand projects; every pair of values meets in at least one
    generated project here, which is where interactions between options show up. A new option
    joins the matrix by being a choice or a bool in copier.yml.
    """
    values = option_values()
    names = list(values)
    full = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values.values())]
    candidates = [answers for answers in full if is_valid(answers)]

    def pairs(answers: Mapping[str, Any]) -> set[tuple[str, str, str, str]]:
        items = [(n, _as_text(answers[n])) for n in names]
        return {(a, va, b, vb) for (a, va), (b, vb) in itertools.combinations(items, 2)}

    uncovered = set().union(*(pairs(a) for a in candidates))
    # Rows the suite must have, whatever the pairs need (test_generated_projects.runs_its_code):
    # the defaults (`make demo`'s project); on the oldest Python, each code the answers that
    # change src/ and tests/ can make, without kubernetes; on each newer Python, the fullest.
    oldest, *newer = sorted(values["python_version"], key=lambda v: tuple(map(int, v.split("."))))
    needs = [
        {"python_version": oldest, "include_serving": serving, "include_monitoring": monitoring}
        | {"deployment": "docker" if serving else "none", "scale_out": "none"}
        for serving, monitoring in itertools.product([True, False], repeat=2)
    ]
    fullest = {"include_serving": True, "include_monitoring": True, "deployment": "kubernetes"}
    needs += [{"python_version": version, "scale_out": "none"} | fullest for version in newer]
    chosen = [dict(defaults())]
    uncovered -= pairs(chosen[0])
    for need in needs:
        meeting = [a for a in candidates if need.items() <= a.items()]
        if meeting and not any(need.items() <= a.items() for a in chosen):
            best = max(meeting, key=lambda a: len(pairs(a) & uncovered))
            chosen.append(best)
            uncovered -= pairs(best)
    while uncovered:
        best = max(candidates, key=lambda a: len(pairs(a) & uncovered))
        chosen.append(best)
        uncovered -= pairs(best)
    return chosen


def answer_id(answers: Mapping[str, Any]) -> str:
    return "-".join(_as_text(answers[name])[:6] for name in option_values())


def dump_answers(answers: Mapping[str, Any]) -> str:
    return json.dumps(dict(answers), sort_keys=True)


def iter_python_files(root: Path) -> Iterator[Path]:
    yield from (p for p in root.rglob("*.py") if ".venv" not in p.parts)
