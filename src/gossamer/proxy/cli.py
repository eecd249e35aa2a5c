"""`gossamer proxy` and `gossamer run`: argparse only, so the sidecar process stays lean.

cli/main.py dispatches here before typer, pydantic or rich are imported.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from dataclasses import dataclass, field

from gossamer.proxy.health import ProbeSpec

DEFAULT_CONTROL = "http://127.0.0.1:15010"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass
class ProxyConfig:
    service: str
    app_port: int
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1"
    app_host: str = "127.0.0.1"
    health: str = "tcp"
    control: str = DEFAULT_CONTROL
    outbound_port: int = 15001
    inbound_port: int = 15006
    stats_port: int = 15020
    admin_port: int = 15000
    upstreams: list[tuple[str, int]] = field(default_factory=list)  # (service key, port)
    lease: float = 10.0
    drain_grace: float = 5.0
    app_grace: float = 5.0
    proxy_id: str = ""
    token: str | None = None  # bootstrap token text (may end in #sha256:<CA fingerprint>)
    token_file: str | None = None
    command: list[str] = field(default_factory=list)  # `gossamer run` only
    report_interval: float = 5.0  # telemetry push to the control plane (0: off)
    access_log: str | None = None  # a path, or "-" for stdout
    trace_sampling: float = 0.01
    otlp_endpoint: str | None = None  # http://host:4318: tracing on

    def service_key(self, name: str) -> str:
        return name if "/" in name else f"{self.namespace}/{name}"


def parse_duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: use e.g. 500ms, 10s, 1m")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"bad port {text!r}: use 0-65535 (0 picks a free one)")
    return int(text)


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"bad label {item!r}: use key=value")
        labels[key.strip()] = value.strip()
    return labels


def parse_upstream(text: str) -> tuple[str, int]:
    """`ratings=9091`, `ratings.shop=9091` or `shop/ratings=9091` → (name or key, port)."""
    name, sep, port = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"bad upstream {text!r}: use service=port")
    if "." in name and "/" not in name:
        svc, _, ns = name.partition(".")
        name = f"{ns}/{svc}"
    return name, parse_port(port)


def _dns_label(text: str) -> str:
    if not _LABEL.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a DNS label (lower-case letters, digits, '-'; at most 63)"
        )
    return text


def _health(text: str) -> str:
    try:
        ProbeSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"bad sampling rate {text!r}: a number from 0 to 1")
    return value


def _otlp_endpoint(text: str) -> str:
    if not re.match(r"^http://[^/\s]+(/\S*)?$", text):
        raise argparse.ArgumentTypeError(f"bad OTLP endpoint {text!r}: use http://host:4318")
    return text


def build_parser(mode: str) -> argparse.ArgumentParser:
    run = mode == "run"
    p = argparse.ArgumentParser(
        prog=f"gossamer {mode}",
        description=(
            "Start an app with its sidecar (the app gets PORT and HTTP_PROXY)."
            if run
            else "Run the sidecar proxy next to an app that is already running."
        ),
    )
    p.add_argument("--service", required=True, type=_dns_label, help="service this app serves")
    port_flags = ["--port", "--app-port"] if run else ["--app-port"]
    p.add_argument(*port_flags, dest="app_port", required=True, type=parse_port,
                   help="port the app listens on")  # fmt: skip
    p.add_argument("--namespace", default="default", type=_dns_label)
    p.add_argument("--labels", default={}, type=parse_labels, help="k=v[,k2=v2]")
    p.add_argument("--address", default="127.0.0.1", help="instance address peers dial")
    p.add_argument("--app-host", default="127.0.0.1", help="where the app listens")
    p.add_argument("--health", default="tcp", type=_health, help="tcp | http:/path")
    p.add_argument("--control", default=os.environ.get("GOSSAMER_CONTROL") or DEFAULT_CONTROL)
    p.add_argument("--token", default=os.environ.get("GOSSAMER_TOKEN"),
                   help="bootstrap token (env GOSSAMER_TOKEN; prefer --token-file)")  # fmt: skip
    p.add_argument("--token-file", default=None, help="file holding the bootstrap token (0600)")
    p.add_argument("--outbound-port", default=15001, type=parse_port)
    p.add_argument("--inbound-port", default=15006, type=parse_port)
    p.add_argument("--stats-port", default=15020, type=parse_port)
    p.add_argument("--admin-port", default=15000, type=parse_port)
    p.add_argument("--upstream", action="append", default=[], type=parse_upstream,
                   metavar="SERVICE=PORT", help="fixed local port for one upstream")  # fmt: skip
    p.add_argument("--lease", default=10.0, type=parse_duration, help="lease, e.g. 10s")
    p.add_argument("--drain-grace", default=5.0, type=parse_duration)
    p.add_argument("--id", dest="proxy_id", default="", help="proxy id (default: service-hex)")
    p.add_argument("--report-interval", default=5.0, type=parse_duration,
                   help="telemetry push to the control plane, e.g. 5s (0: off)")  # fmt: skip
    p.add_argument("--access-log", default=None, metavar="PATH|-",
                   help="JSON access log lines to a file or stdout (default: off)")  # fmt: skip
    p.add_argument("--trace-sampling", default=0.01, type=_fraction,
                   help="share of new traces recorded, 0..1 (callers' decisions win)")  # fmt: skip
    p.add_argument("--otlp-endpoint", default=None, type=_otlp_endpoint,
                   help="OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (tracing on)")  # fmt: skip
    if run:
        p.add_argument("--app-grace", default=5.0, type=parse_duration,
                       help="after SIGTERM, how long the app has before SIGKILL")  # fmt: skip
        p.add_argument("command", nargs=argparse.REMAINDER, help="-- the app's command line")
    return p


def parse_args(argv: list[str]) -> ProxyConfig:
    mode, rest = argv[0], argv[1:]
    ns = build_parser(mode).parse_args(rest)
    command: list[str] = list(getattr(ns, "command", []) or [])
    if command and command[0] == "--":
        command = command[1:]
    if mode == "run" and not command:
        build_parser(mode).error("give the app's command after `--`")
    cfg = ProxyConfig(
        service=ns.service,
        app_port=ns.app_port,
        namespace=ns.namespace,
        labels=ns.labels,
        address=ns.address,
        app_host=ns.app_host,
        health=ns.health,
        control=ns.control,
        outbound_port=ns.outbound_port,
        inbound_port=ns.inbound_port,
        stats_port=ns.stats_port,
        admin_port=ns.admin_port,
        lease=ns.lease,
        drain_grace=ns.drain_grace,
        app_grace=getattr(ns, "app_grace", 5.0),
        proxy_id=ns.proxy_id or f"{ns.service}-{secrets.token_hex(4)}",
        token=ns.token,
        token_file=ns.token_file,
        command=command,
        report_interval=ns.report_interval,
        access_log=ns.access_log,
        trace_sampling=ns.trace_sampling,
        otlp_endpoint=ns.otlp_endpoint,
    )
    cfg.upstreams = [(cfg.service_key(name), port) for name, port in ns.upstream]
    from gossamer.proxy.bootstrap import BootstrapError, read_token

    try:
        read_token(cfg.token, cfg.token_file)  # a bad token file stops us here, clearly
    except BootstrapError as exc:
        build_parser(mode).error(str(exc))
    return cfg


def main(argv: list[str]) -> int:
    """argv[0] is `proxy` or `run`."""
    if not argv or argv[0] not in ("proxy", "run"):
        print("usage: gossamer proxy|run ...", file=sys.stderr)
        return 2
    try:
        cfg = parse_args(argv)
    except SystemExit as exc:  # argparse prints its own message
        return int(exc.code or 0)
    from gossamer.proxy.runtime import run_sidecar

    return run_sidecar(cfg, with_app=argv[0] == "run")
