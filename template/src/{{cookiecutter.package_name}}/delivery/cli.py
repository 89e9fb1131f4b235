"""Delivery's commands, merged into the project's CLI (cli.py). Heavy imports stay inside
the commands so `--help` answers at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..console import ParamsOption

app = typer.Typer()


@app.command("smoke-test")
def smoke_test(
    url: Annotated[
        str, typer.Argument(help="The service's base URL, e.g. https://staging.example.com.")
    ],
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable that holds the API key (unset: no key).")
    ] = "API_KEY",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for /ready.", min=0)] = 120.0,
    model_version: Annotated[
        str | None, typer.Option(help="Fail unless the service runs this model version.")
    ] = None,
) -> None:
    """/ready, then the example the service documents scored; exit 1 naming what failed."""
    from .smoke import SmokeError
    from .smoke import smoke_test as run_smoke_test

    try:
        run_smoke_test(url, os.environ.get(api_key_env), typer.echo, timeout, model_version)
    except SmokeError as exc:
        typer.echo(f"smoke test failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("smoke test passed")


@app.command("canary-verdict")
def canary_verdict(
    prometheus: Annotated[
        str, typer.Option(help="Prometheus that scrapes both roles, e.g. http://127.0.0.1:9090.")
    ],
    window: Annotated[
        str | None,
        typer.Option(help="Range to compare, a Prometheus duration (default: params.yaml)."),
    ] = None,
    job: Annotated[str | None, typer.Option(help="Only this scrape job's series.")] = None,
    at: Annotated[
        str | None,
        typer.Option(help="Judge the window that ends then (RFC 3339 or Unix time), not now."),
    ] = None,
    attempts: Annotated[
        int,
        typer.Option(help="Ask again, up to this many times in all, while exit would be 4.", min=1),
    ] = 1,
    wait: Annotated[float, typer.Option(help="Seconds to wait before each attempt.", min=0)] = 0,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Canary against stable from Prometheus: error rate, p99 latency, prediction PSI and
    requests. Exit 0 promote, 3 rollback, 4 not enough requests to decide, 1 error."""
    from ..config import load_params
    from ..console import expected_errors
    from .canary import Prometheus, VerdictError, decide_in_time, report, with_window

    with expected_errors(VerdictError):
        limits = load_params(params_file).delivery.canary
        if window is not None:
            limits = with_window(limits, window)
        verdict = decide_in_time(
            Prometheus(prometheus, at), limits, job, attempts=attempts, wait=wait, say=typer.echo
        )
    typer.echo(report(verdict, limits.window))
    raise typer.Exit(verdict.outcome)
{%- if cookiecutter.deployment == "kubernetes" %}


@app.command("render-manifests")
def render_manifests(
    overlay: Annotated[str, typer.Argument(help="staging, production, canary or kserve.")],
    image: Annotated[str, typer.Option(help="The image to run: name:tag or name@sha256:....")],
    slot: Annotated[
        str | None, typer.Option(help="production (blue-green): the slot that gets the image.")
    ] = None,
    switch: Annotated[
        bool, typer.Option(help="production: also send the live Service's traffic to --slot.")
    ] = False,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Render an overlay of deploy/k8s (or deploy/kserve) with `kubectl kustomize`, the image
    set: what CD applies."""
    from ..console import expected_errors
    from .manifests import ManifestError, render

    with expected_errors(ManifestError, OSError):
        manifests = render(overlay, image, slot=slot, switch=switch)
        if output is None:
            typer.echo(manifests, nl=False)
        else:
            output.write_text(manifests, encoding="utf-8")
            typer.echo(f"wrote {overlay} ({image}) to {output}", err=True)


@app.command("idle-slot")
def idle_slot(
    namespace: Annotated[str | None, typer.Option(help="Production's namespace.")] = None,
) -> None:
    """Production's blue-green slot that does not serve, which gets the next image: printed on
    stdout (what is live on stderr). Reads the live Service with kubectl."""
    from ..console import expected_errors
    from .slots import NAMESPACE, SlotError, live_slot
    from .slots import idle_slot as other_slot

    with expected_errors(SlotError):
        live = live_slot(namespace or NAMESPACE)
    idle = other_slot(live)
    typer.echo(f"live slot: {live or 'none'}; the image goes to {idle}", err=True)
    typer.echo(idle)
{%- endif %}


@app.command()
def consume() -> None:
    """Score requests from a topic like POST /predict; answers and dead letters to theirs.

    STREAM_URL picks the broker (kafka://, redis://, nats://); STREAM_REQUESTS, STREAM_RESULTS,
    STREAM_DEAD_LETTER and STREAM_GROUP name the topics and the consumer group. The model and
    the prediction log come from the service's settings (MODEL_DIR, PREDICTION_LOG_DIR...).
    """
    from ..console import expected_errors
    from ..serving.logs import configure_logging
    from ..serving.model_store import ModelLoadError
    from ..serving.settings import SettingsError, load_settings
    from .consumer import (
        BrokerUnreachableError,
        StreamSettingsError,
        build_consumer,
        load_stream_settings,
        predict_service,
    )

    with expected_errors(
        StreamSettingsError, SettingsError, ModelLoadError, BrokerUnreachableError
    ):
        stream = load_stream_settings()
        settings = load_settings()
        configure_logging(settings.log_level)
        build_consumer(stream, predict_service(settings)).run()
