"""`gossamer gateway --name edge`: argparse only; a lean process like the sidecar."""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass, field

from gossamer.proxy.cli import (
    DEFAULT_CONTROL,
    _dns_label,
    _fraction,
    _otlp_endpoint,
    parse_duration,
    parse_port,
)


@dataclass
class GatewayConfig:
    name: str
    namespace: str = "default"
    control: str = DEFAULT_CONTROL
    address: str = "0.0.0.0"
    port_overrides: dict[str, int] = field(default_factory=dict)  # listener -> bound port
    stats_port: int = 15021
    token: str | None = None
    token_file: str | None = None
    proxy_id: str = ""
    trusted_proxies: int = 0
    access_log: str | None = "-"
    report_interval: float = 5.0
    drain_grace: float = 5.0
    cert_check: float = 1.0  # seconds between certificate file checks
    max_body: int = 8 * 1024 * 1024  # a larger body (declared or streamed) is answered 413
    trace_sampling: float = 0.01
    otlp_endpoint: str | None = None


def _override(text: str) -> tuple[str, int]:
    name, sep, port = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"bad --listener-port {text!r}: use LISTENER=PORT")
    return _dns_label(name), parse_port(port)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) > 10:
        raise argparse.ArgumentTypeError(f"bad count {text!r}: a whole number from 0 to 10")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gossamer gateway",
        description="Serve the listeners a Gateway resource declares (the mesh's edge).",
    )
    p.add_argument("--name", required=True, type=_dns_label, help="the Gateway resource")
    p.add_argument("--namespace", default="default", type=_dns_label)
    p.add_argument("--control", default=os.environ.get("GOSSAMER_CONTROL") or DEFAULT_CONTROL)
    p.add_argument("--address", default="0.0.0.0", help="address the listeners bind")
    p.add_argument("--listener-port", action="append", default=[], type=_override,
                   metavar="LISTENER=PORT", help="bind a listener elsewhere (0: any free port)")  # fmt: skip
    p.add_argument("--stats-port", default=15021, type=parse_port, help="/metrics, /ready")
    # Without either, on a loopback control plane whose data dir we can read, the local
    # admin credential obtains a token scoped to this gateway (proxy/workload.py).
    p.add_argument("--token", default=os.environ.get("GOSSAMER_TOKEN"),
                   help="bootstrap token for this gateway (env GOSSAMER_TOKEN; prefer --token-file)")  # fmt: skip
    p.add_argument("--token-file", default=None, help="file holding the bootstrap token (0600)")
    p.add_argument("--id", dest="proxy_id", default="")
    p.add_argument("--trusted-proxies", default=0, type=_count,
                   help="proxies in front of the gateway whose X-Forwarded-For is kept")  # fmt: skip
    p.add_argument("--access-log", default="-", metavar="PATH|-|off",
                   help="JSON access log lines (default: stdout)")  # fmt: skip
    p.add_argument("--max-body", default=8 * 1024 * 1024, type=int,
                   help="largest request body in bytes, declared or chunked (413 beyond)")  # fmt: skip
    p.add_argument("--trace-sampling", default=0.01, type=_fraction)
    p.add_argument("--otlp-endpoint", default=None, type=_otlp_endpoint,
                   help="OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (tracing on)")  # fmt: skip
    p.add_argument("--report-interval", default=5.0, type=parse_duration)
    p.add_argument("--drain-grace", default=5.0, type=parse_duration)
    return p


def parse_args(argv: list[str]) -> GatewayConfig:
    parser = build_parser()
    ns = parser.parse_args(argv)
    from gossamer.proxy.bootstrap import BootstrapError, read_token

    try:
        read_token(ns.token, ns.token_file)  # a bad token file stops us here, clearly
    except BootstrapError as exc:
        parser.error(str(exc))
    return GatewayConfig(
        name=ns.name,
        namespace=ns.namespace,
        control=ns.control,
        address=ns.address,
        port_overrides=dict(ns.listener_port),
        stats_port=ns.stats_port,
        token=ns.token,
        token_file=ns.token_file,
        proxy_id=ns.proxy_id or f"{ns.name}-{secrets.token_hex(4)}",
        trusted_proxies=ns.trusted_proxies,
        access_log=None if ns.access_log == "off" else ns.access_log,
        report_interval=ns.report_interval,
        drain_grace=ns.drain_grace,
        max_body=ns.max_body,
        trace_sampling=ns.trace_sampling,
        otlp_endpoint=ns.otlp_endpoint,
    )


def main(argv: list[str]) -> int:
    """argv[0] is `gateway`."""
    try:
        cfg = parse_args(argv[1:])
    except SystemExit as exc:
        return int(exc.code or 0)
    from gossamer.gateway.runtime import run_gateway

    return run_gateway(cfg)
