"""Prove the image's entrypoint without Docker: run the API from a serve-only environment.

`make check-image` builds that environment (`uv sync --no-default-groups --group serve`, as the
Dockerfile does), then this script checks it cannot import the training stack, compiles the
trees' library from the checkpoint as the image's build stage does, starts the image's server
(`python -m {{ cookiecutter.package_name }}.serving.server`) from it against that model folder,
scores the contract's example record, and prints the environment's size next to the full one's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TRAINING_ONLY = ("mlflow", "pandas", "dvc", "great_expectations")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", type=Path, required=True, help="serve-only env's python")
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models/champion"))
    )
    args = parser.parse_args()
    if not (args.model_dir / "metadata.json").is_file():
        print(f"error: no exported model in {args.model_dir}; run `make export-model` first")
        return 1
    python = str(args.python)

    leaked = subprocess.run(  # noqa: S603 - our own interpreter path, no shell
        [
            python,
            "-c",
            f"import importlib.util as u; print([m for m in {TRAINING_ONLY!r} if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if leaked != "[]":
        print(f"error: the serve env can import training packages: {leaked}")
        return 1
    with tempfile.TemporaryDirectory(prefix="image-") as scratch:
        model_dir = _build_stage(python, args.model_dir, Path(scratch) / "champion")
        if model_dir is None:
            return 1
        return _serve(args.python, model_dir)


def _build_stage(python: str, source: Path, model_dir: Path) -> Path | None:
    """The export folder as the image's build stage leaves it: the library compiled again."""
    shutil.copytree(source, model_dir)
    for library in model_dir.glob("model-*.so"):
        library.unlink()
    compiled = subprocess.run(  # noqa: S603 - our own interpreter path, no shell
        [python, "-m", "{{ cookiecutter.package_name }}.trees", str(model_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if compiled.returncode:
        print(f"error: the image's build stage could not compile the trees:\n{compiled.stderr}")
        return None
    print(compiled.stdout.strip())
    return model_dir


def _serve(python_path: Path, model_dir: Path) -> int:
    python = str(python_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "OMP_NUM_THREADS": "1",
        "PREDICTION_LOG_DIR": "",
        "SERVING_CONFIG": "none",
    }
    started = time.perf_counter()
    server = subprocess.Popen(  # noqa: S603 - our own interpreter path, no shell
        [python, "-m", "{{ cookiecutter.package_name }}.serving.server"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        example = _first_prediction(base, server)
        cold_start = time.perf_counter() - started
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=15)
    if example is None:
        print(f"error: the service did not answer from the serve-only env:\n{stderr[-3000:]}")
        return 1
    print(f"serve-only env answered /predict: {example}")
    print(f"cold start to first prediction: {cold_start:.2f} s")
    # uvicorn re-raises the SIGTERM it handled once shutdown is done, so -15 is a clean stop.
    clean = server.returncode in (0, -signal.SIGTERM)
    print(f"exit after SIGTERM: {server.returncode} ({'clean' if clean else 'NOT clean'})")
    env_root = python_path.parent.parent
    print(f"serve-only env size: {_size_mb(env_root):7.0f} MB  ({env_root})")
    print(f"full env size:       {_size_mb(Path(sys.prefix)):7.0f} MB  ({sys.prefix})")
    return 0 if clean else 1


def _first_prediction(base: str, server: subprocess.Popen[str]) -> str | None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/openapi.json", timeout=2) as response:  # noqa: S310
                document = json.load(response)
            example = document["paths"]["/predict"]["post"]["requestBody"]["content"][
                "application/json"
            ]["examples"]["record"]["value"]
            request = urllib.request.Request(  # noqa: S310 - loopback http URL built here
                f"{base}/predict",
                data=json.dumps(example).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                answer: str = response.read().decode()
                return answer
        except OSError:
            time.sleep(0.05)
    return None


def _size_mb(root: Path) -> float:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


if __name__ == "__main__":
    sys.exit(main())
