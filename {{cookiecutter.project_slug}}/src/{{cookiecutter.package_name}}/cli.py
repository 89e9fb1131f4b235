"""The command line: one subcommand per pipeline stage, called by dvc.yaml and the Makefile."""

from pathlib import Path

import typer

from .schema import Contract, ContractError

app = typer.Typer(help=__doc__, no_args_is_help=True)


@app.command()
def contract(path: Path = Path("schema.yaml")) -> None:
    """Check the data contract and list its columns."""
    try:
        loaded = Contract.load(path)
    except ContractError as exc:
        typer.secho(str(exc), err=True, fg="red")
        raise typer.Exit(code=1) from None
    target = loaded.target
    typer.echo(f"{len(loaded.features)} features, target {target.name!r} ({target.kind})")


@app.callback()
def main() -> None:
    """Keep subcommands explicit even while there is only one."""
