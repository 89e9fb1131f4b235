"""The loop's commands, merged into the project's CLI (cli.py). Heavy imports stay inside
the commands so `--help` answers at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ..console import ParamsOption, expected_errors
{%- if cookiecutter.scale_out == 'spark' %}
from ..spark import Engine, EngineOption, MasterOption, SparkError
{%- endif %}
from .trigger import Reason

app = typer.Typer()

# `retrain` exits 4 when another retrain holds the lock (0: promoted or refused by the gate).
ALREADY_RUNNING = 4


@app.command("compact-log")
def compact_log(
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Compact the prediction log's rotated segments to Parquet; delete compacted data older
    than monitoring.log.retention_days (a JSONL segment goes only once compacted)."""
    from ..config import load_params
    from ..schema import Contract
    from .log_store import LogError, compact

    with expected_errors(LogError, OSError):
        params = load_params(params_file)
        log = params.monitoring.log
        done = compact(log.directory, Contract.load(params.data.contract), log.retention_days)
    typer.echo(
        f"{log.directory}: {len(done.compacted)} segment(s) compacted to Parquet "
        f"({done.rows:,} rows); {len(done.removed)} older than {log.retention_days} days deleted"
    )
    if done.corrupt_lines:
        typer.echo(
            f"warning: {done.corrupt_lines} unreadable line(s) skipped, kept in "
            f"{log.directory}/rejected/",
            err=True,
        )


# Exit code of `monitor --fail-on-drift` when the verdict is drift (1 is an error).
DRIFT_EXIT = 3


def _moment(value: str | None, flag: str) -> datetime | None:
    """An ISO time from the command line; without a zone it is UTC, the log's own."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO time (e.g. 2026-11-25T00:00Z)", param_hint=flag
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def monitor(
    since: Annotated[
        str | None, typer.Option(help="Start of the window, ISO time (UTC if no zone).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End of the window, ISO time.")] = None,
    last: Annotated[int | None, typer.Option(help="The newest N requests instead.")] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="CSV/Parquet: request_id, row (optional), the target, numeric KPIs."),
    ] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help=f"Exit {DRIFT_EXIT} on drift.")
    ] = False,
    out_dir: Annotated[Path, typer.Option(help="Where drift.json/.md/.html go.")] = Path("reports"),
    model_dir: Annotated[Path, typer.Option(help="The exported champion.")] = Path(
        "models/champion"
    ),
    params_file: ParamsOption = Path("params.yaml"),
{%- if cookiecutter.scale_out == 'spark' %}
    engine: EngineOption = Engine.LOCAL,
    master: MasterOption = None,
    log: Annotated[
        str | None,
        typer.Option(help="Spark: the log's Parquet rows, any path Spark reads (a glob too)."),
    ] = None,
{%- endif %}
) -> None:
    """Drift of the champion's features, predictions and (with --labels) metrics over a
    window of the prediction log (default: the last monitoring.drift.window_hours)."""
    from ..config import load_params
    from ..serving.model_store import ModelLoadError
    from .log_store import LogError
    from .monitor import monitor as run_monitor
    from .reference import LineageError
    from .report import VERDICTS, write_reports

    with expected_errors(LineageError, LogError, ModelLoadError, OSError{% if cookiecutter.scale_out == 'spark' %}, SparkError{% endif %}):
        params = load_params(params_file)
        start, end = _moment(since, "--since"), _moment(until, "--until")
{%- if cookiecutter.scale_out == 'spark' %}
        if engine is Engine.SPARK:
            from .spark import monitor_on_spark

            if last is not None or labels is not None:
                raise SparkError("--last and --labels run on one machine: drop --engine spark")
            report = monitor_on_spark(params, model_dir, log, since=start, until=end, master=master)
        else:
            report = run_monitor(
                params, model_dir, since=start, until=end, last=last, labels=labels
            )
{%- else %}
        report = run_monitor(params, model_dir, since=start, until=end, last=last, labels=labels)
{%- endif %}
        paths = write_reports(report, out_dir)
    window = report["window"]
    typer.echo(
        f"{VERDICTS[report['verdict']]}: v{report['model_version']}, {window['rows']:,} rows "
        f"of {window['requests']:,} requests; drifted features: "
        f"{', '.join(report['drifted_features']) or 'none'}"
    )
    if window["corrupt_lines"]:
        typer.echo(f"warning: {window['corrupt_lines']} corrupt log line(s) skipped", err=True)
    typer.echo(f"reports: {', '.join(str(path) for path in paths)}")
    if fail_on_drift and report["verdict"] == "drift":
        raise typer.Exit(DRIFT_EXIT)


# Exit code of `trace` when a link of the chain is missing or does not check out.
BROKEN_CHAIN = 3


@app.command()
def trace(
    request_id: Annotated[str, typer.Argument(help="The X-Request-ID of a /predict answer.")],
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """A prediction back to its data: request -> model version -> MLflow run -> git commit ->
    the DVC-tracked data and its MD5 (in the cache? the remote?) -> its validation report.
    Exit 0 when every link checks out, 3 when one does not, 1 for an unknown request."""
    from ..config import load_params
    from ..schema import Contract
    from .log_store import LogError, find_request
    from .trace import no_such_request
    from .trace import trace as follow

    with expected_errors(LogError, OSError):
        params = load_params(params_file)
        log = params.monitoring.log
        contract = Contract.load(params.data.contract)
        request = find_request(log.directory, contract, request_id)
        if not len(request):
            message = no_such_request(
                request_id, log.directory, contract, log.retention_days, datetime.now(UTC)
            )
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(1)
        links = follow(request, Path.cwd(), params.data.raw)
    for link in links:
        typer.echo(f"{link.name:<11}{'' if link.found else 'BROKEN: '}{link.text}")
    if not all(link.found for link in links):
        raise typer.Exit(BROKEN_CHAIN)


@app.command()
def retrain(
    reason: Annotated[Reason, typer.Option(help="What triggered it; the audit log records it.")],
    report: Annotated[
        Path | None, typer.Option(help="The drift report behind it, e.g. reports/drift.json.")
    ] = None,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """New labelled rows from the inbox -> checks -> raw table -> dvc repro (the gate) ->
    export and hot swap when promoted. Exit 0 promoted or refused, 1 error, 4 already running."""
    from ..config import load_params
    from .retrain import RetrainError
    from .retrain import retrain as run_retrain
    from .trigger import AlreadyRunningError, ReportError, Trigger, acquire_lock

    try:
        lock = acquire_lock()
    except AlreadyRunningError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ALREADY_RUNNING) from None
    with lock, expected_errors(ReportError, RetrainError):
        entry = run_retrain(Trigger(reason, report), load_params(params_file), typer.echo)
    typer.echo(f"retrain ({reason.value}): {entry['outcome']}")


@app.command("commit-retrain")
def commit_retrain(
    branch: Annotated[str, typer.Option(help="The branch to create, e.g. retrain/<run id>.")],
    body: Annotated[Path, typer.Option(help="Where the pull request's body goes.")],
    github_output: Annotated[
        Path | None,
        typer.Option(envvar="GITHUB_OUTPUT", help="Also write branch= and title= here."),
    ] = None,
    summary: Annotated[
        Path | None, typer.Option(envvar="GITHUB_STEP_SUMMARY", help="Also append the body here.")
    ] = None,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """The newest retrain's outputs committed on a new BRANCH (through the git hooks), and the
    pull request's body in BODY; nothing when neither the data nor the pipeline changed."""
    from ..compare import CompareError
    from ..config import load_params
    from .branch import BranchError, changed, commit_on_branch, propose

    with expected_errors(BranchError, CompareError):
        if not changed():
            typer.echo("nothing new: the data and the pipeline are as committed; no branch")
            return
        proposal = propose(load_params(params_file), Path("reports") / "audit.jsonl")
        body.parent.mkdir(parents=True, exist_ok=True)
        body.write_text(proposal.body, encoding="utf-8")
        commit_on_branch(branch, proposal.title)
    typer.echo(f"{branch}: {proposal.title}\n\n{proposal.body}")
    if github_output is not None:
        with github_output.open("a", encoding="utf-8") as out:
            out.write(f"branch={branch}\ntitle={proposal.title}\n")
    if summary is not None:
        with summary.open("a", encoding="utf-8") as out:
            out.write(proposal.body)


@app.command()
def webhook(
    host: Annotated[str, typer.Option(envvar="WEBHOOK_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="WEBHOOK_PORT")] = 8001,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Alertmanager's webhook receiver: POST /alertmanager with `Authorization: Bearer
    $RETRAIN_TOKEN`; a firing alert labelled action="retrain" starts a retrain."""
    import logging
    import os

    import uvicorn

    from .webhook import create_app, retrain_job

    token = os.environ.get("RETRAIN_TOKEN", "")
    if not token:
        typer.echo("error: RETRAIN_TOKEN is not set: the webhook needs a token", err=True)
        raise typer.Exit(1)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(create_app(token, retrain_job(params_file)), host=host, port=port)


@app.command("loop-demo")
def loop_demo(
    rows: Annotated[int, typer.Option(min=200, help="Rows of traffic, and of new data.")] = 2_000,
    scale: Annotated[
        float, typer.Option(min=1.1, help="The known drift: loan amounts times this.")
    ] = 2.0,
    seed: Annotated[int, typer.Option(help="Seed of the rows drawn.")] = 7,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """The whole loop, step by step: serve, drifted traffic, monitor, new labelled data,
    retrain, the gate, hot swap with no failed request."""
    from ..config import load_params
    from .demo import DemoError, run_loop
    from .reference import LineageError

    with expected_errors(DemoError, LineageError):
        params = load_params(params_file)
        run_loop(params, params.monitoring.retrain.model_dir, rows, scale, seed)
    typer.echo("\nthe loop is closed: drift found, retrained through the gate, served live")
