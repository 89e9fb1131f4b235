"""Delivery's commands, merged into the project's CLI (cli.py). Heavy imports stay inside
the commands so `--help` answers at once."""

from __future__ import annotations

import typer

app = typer.Typer()
