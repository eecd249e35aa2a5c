"""Options and output helpers shared by every command group."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from gossamer import __version__

DEFAULT_CONTROL = "http://127.0.0.1:15010"


def control_url(value: str | None) -> str:
    return (value or os.environ.get("GOSSAMER_CONTROL") or DEFAULT_CONTROL).rstrip("/")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(os.environ.get("GOSSAMER_DATA_DIR") or os.path.join(base, "gossamer"))


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print gossamer's version."""
        typer.echo(f"gossamer {__version__}")
