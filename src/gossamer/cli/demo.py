"""`gossamer demo`: the whole mesh on this machine, with live traffic."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        data_dir: Path | None = typer.Option(
            None, "--data-dir", help="keep state and logs here (default: a temporary dir)"
        ),
        rps: float = typer.Option(5.0, "--rps", help="load on the frontend, requests/s"),
    ) -> None:
        """Run a demo mesh: control plane, frontend → catalog + reviews v1/v2, and load."""
        from gossamer.demo.orchestrator import run_demo

        raise typer.Exit(asyncio.run(run_demo(data_dir, rps)))
