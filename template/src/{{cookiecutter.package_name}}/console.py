"""What every command shares: the `--params` option, and one way to turn the errors a user
can fix (bad parameters, contract or data, a missing file) into a message and exit code 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

ParamsOption = Annotated[
    Path, typer.Option("--params", "-p", help="Parameters file.", show_default=True)
]


@contextmanager
def expected_errors(*more: type[Exception]) -> Iterator[None]:
    """Print `error: ...` on stderr and exit 1 for these and the errors every command expects."""
    from .config import ConfigError
    from .data import DataError
    from .schema import ContractError

    expected: tuple[type[Exception], ...] = (
        *(ConfigError, ContractError, DataError, FileNotFoundError),
        *more,
    )
    try:
        yield
    except expected as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
