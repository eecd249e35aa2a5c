"""`gossamer control`: run the control plane."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import typer
import uvloop

from gossamer.cli.common import default_data_dir


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise typer.BadParameter(f"must be HOST:PORT (port 0-65535), got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _serve(host: str, port: int, data_dir: Path, store_url: str | None) -> None:
    from gossamer.control.server import ControlServer, running
    from gossamer.store.open import open_store, store_path

    store = open_store(store_url, data_dir)
    try:
        server = ControlServer(store, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running(server):
            where = store_path(store_url, data_dir)
            typer.echo(
                f"gossamer control plane listening on http://{host}:{server.port} "
                f"(data: {data_dir}, store: {where})"
            )
            await stop.wait()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    finally:
        await store.close()


def register(app: typer.Typer) -> None:
    @app.command()
    def control(
        listen: str = typer.Option(
            "127.0.0.1:15010", help="Address to serve the API on (port 0: any free port)."
        ),
        data_dir: Path | None = typer.Option(None, help="Where the control plane keeps its data."),
        store: str | None = typer.Option(
            None,
            help="Store URL, e.g. sqlite:///var/lib/gossamer.db (default: <data-dir>/gossamer.db).",
        ),
    ) -> None:
        """Run the control plane (API, registry, proxy snapshot streams)."""
        host, port = _parse_listen(listen)
        directory = data_dir or default_data_dir()
        from gossamer.store.open import StoreURLError

        try:
            # uvloop: thousands of proxy streams and their ACKs are the control plane's load.
            with (
                contextlib.suppress(KeyboardInterrupt),
                asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
            ):
                runner.run(_serve(host, port, directory, store))
        except StoreURLError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            typer.echo(f"error: cannot listen on {listen}: {exc}", err=True)
            raise typer.Exit(1) from None
