"""The loop's commands, merged into the project's CLI (cli.py). Heavy imports stay inside
the commands so `--help` answers at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command("compact-log")
def compact_log(
    params_file: Annotated[
        Path, typer.Option("--params", "-p", help="Parameters file.", show_default=True)
    ] = Path("params.yaml"),
) -> None:
    """Compact the prediction log's rotated segments to Parquet; delete compacted data older
    than monitoring.log.retention_days (a JSONL segment goes only once compacted)."""
    from ..config import ConfigError, load_params
    from ..schema import Contract, ContractError
    from .log_store import LogError, compact

    try:
        params = load_params(params_file)
        log = params.monitoring.log
        done = compact(log.directory, Contract.load(params.data.contract), log.retention_days)
    except (ConfigError, ContractError, LogError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
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
