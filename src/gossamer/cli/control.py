"""`gossamer control`: run the control plane."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
from dataclasses import dataclass
from pathlib import Path

import typer
import uvloop

from gossamer.cli.common import default_data_dir


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise typer.BadParameter(f"must be HOST:PORT (port 0-65535), got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True)
class SecurityOptions:
    trust_domain: str
    ca_cert: Path | None
    ca_key: Path | None
    mtls: str
    cert_ttl: int
    tls_cert: Path | None
    tls_key: Path | None
    tls: bool = False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve(
    host: str, port: int, data_dir: Path, store_url: str | None, options: SecurityOptions
) -> None:
    from gossamer.control.security import Security, control_plane_ssl
    from gossamer.control.server import ControlServer, running
    from gossamer.store.open import open_store, store_path

    security = Security.open(
        data_dir,
        options.trust_domain,
        ca_cert=options.ca_cert,
        ca_key=options.ca_key,
        mtls=options.mtls,
        cert_ttl_seconds=options.cert_ttl,
    )
    tls = None
    if options.tls or options.tls_cert is not None or not is_loopback(host):
        # Anything but loopback is served over TLS only: tokens travel in every request.
        tls = control_plane_ssl(security, options.tls_cert, options.tls_key)
    store = open_store(store_url, data_dir)
    try:
        server = ControlServer(store, host, port, security=security, ssl_context=tls)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running(server):
            where = store_path(store_url, data_dir)
            scheme = "https" if tls is not None else "http"
            typer.echo(
                f"gossamer control plane listening on {scheme}://{host}:{server.port} "
                f"(data: {data_dir}, store: {where})"
            )
            typer.echo(
                f"mesh CA: trust domain {options.trust_domain}, fingerprint "
                f"{security.fingerprint()}, mTLS {options.mtls}; admin credential in "
                f"{data_dir / 'credentials' / 'admin.token'}",
                err=True,
            )
            await stop.wait()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    finally:
        await store.close()


def _ttl_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    if not number.isdigit() or not 1 <= int(number) * units[unit] <= 90 * 86400:
        raise typer.BadParameter(f"{text!r}: use e.g. 10s, 1h, 24h (1 s to 90 days)")
    return int(number) * units[unit]


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
        trust_domain: str = typer.Option("cluster.local", help="The mesh's SPIFFE trust domain."),
        ca_cert: Path | None = typer.Option(
            None, help="First start: import this CA certificate (chain) instead of a new root."
        ),
        ca_key: Path | None = typer.Option(None, help="Its private key (PEM, mode 0600)."),
        mtls: str = typer.Option(
            "strict",
            envvar="GOSSAMER_MTLS",
            help="Mesh-wide mTLS mode: strict | permissive | disable.",
        ),
        cert_ttl: str = typer.Option("24h", help="Workload certificate lifetime, e.g. 24h, 10s."),
        tls_cert: Path | None = typer.Option(
            None,
            help="Serve the API with this certificate (default off loopback: one from the mesh CA).",
        ),
        tls_key: Path | None = typer.Option(None, help="The key of --tls-cert."),
        tls: bool = typer.Option(
            False, "--tls", help="Serve TLS on loopback too (always on for other addresses)."
        ),
    ) -> None:
        """Run the control plane (API, registry, proxy snapshot streams)."""
        host, port = _parse_listen(listen)
        directory = data_dir or default_data_dir()
        from gossamer.control.ca import AuthorityError, InsecureKeyFileError, SpiffeIdError
        from gossamer.store.open import StoreURLError

        if mtls.lower() not in ("strict", "permissive", "disable"):
            raise typer.BadParameter("must be strict, permissive or disable", param_hint="'--mtls'")
        if (tls_cert is None) != (tls_key is None):
            raise typer.BadParameter("give both --tls-cert and --tls-key, or neither")
        options = SecurityOptions(
            trust_domain,
            ca_cert,
            ca_key,
            mtls.upper(),
            _ttl_seconds(cert_ttl),
            tls_cert,
            tls_key,
            tls,
        )

        try:
            # uvloop: thousands of proxy streams and their ACKs are the control plane's load.
            with (
                contextlib.suppress(KeyboardInterrupt),
                asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
            ):
                runner.run(_serve(host, port, directory, store, options))
        except (AuthorityError, InsecureKeyFileError, SpiffeIdError) as exc:
            typer.echo(f"error: mesh CA: {exc}", err=True)
            raise typer.Exit(1) from None
        except StoreURLError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            typer.echo(f"error: cannot listen on {listen}: {exc}", err=True)
            raise typer.Exit(1) from None
