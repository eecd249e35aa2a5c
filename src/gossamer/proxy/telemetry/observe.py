"""The sidecar's observability wiring: which observers the flags turn on, the `/tap`
stream handler, and the background tasks (report push, access log writer, span exporter)
that the runtime runs in its TaskGroup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

from gossamer.proxy.admin import Reply, Stream, text_reply
from gossamer.proxy.control_client import Endpoint, HttpClient
from gossamer.proxy.telemetry.access_log import AccessLog, open_target
from gossamer.proxy.telemetry.report import Reporter
from gossamer.proxy.telemetry.tap import (
    Tap,
    TapQueryError,
    parse_query,
    tap_allowed,
    tap_credential,
)
from gossamer.proxy.telemetry.tracing import Tracer

if TYPE_CHECKING:
    from gossamer.proxy.cli import ProxyConfig
    from gossamer.proxy.control_client import ControlClient
    from gossamer.proxy.telemetry.stats import Stats


class Observability:
    def __init__(
        self,
        cfg: ProxyConfig,
        stats: Stats,
        client: ControlClient,
        log: Callable[[str], None],
        mesh_view: Callable[[], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.stats = stats
        self.log = log
        # The snapshot's mesh section (its tapSecret guards `/tap`); None: an embedding
        # with no control plane security. `tap_credential` overrides it when set.
        self.mesh_view = mesh_view
        self.tap_credential: str | None = None
        self.reporter: Reporter | None = None
        if cfg.report_interval > 0:
            self.reporter = Reporter(stats, client.http, cfg.proxy_id, cfg.report_interval, log=log)
        if cfg.access_log is not None:
            stats.access_log = AccessLog(stats, open_target(cfg.access_log))
        self.otlp: HttpClient | None = None
        if cfg.otlp_endpoint is not None:
            self.otlp = HttpClient(Endpoint.parse(cfg.otlp_endpoint))
            stats.tracer = Tracer(
                stats,
                cfg.trace_sampling,
                [
                    ("service.name", cfg.service),
                    ("service.namespace", cfg.namespace),
                    ("service.instance.id", cfg.proxy_id),
                    *((("service.version", v),) if (v := cfg.labels.get("version")) else ()),
                ],
            )
        stats.register_gauge(
            "gossamer_snapshot_version",
            "Version of the configuration snapshot applied (0: none yet).",
            lambda: client.version or 0,
        )
        stats.register_gauge(
            "gossamer_control_plane_connected",
            "1 while the configuration stream from the control plane is open.",
            lambda: int(client.stream_connected.is_set()),
        )
        stats.register_gauge(
            "gossamer_control_plane_registered",
            "1 while this proxy holds a registration lease.",
            lambda: int(client.registered.is_set()),
        )
        stats.register_gauge(
            "gossamer_taps_active", "Tap streams open now.", lambda: len(stats.taps)
        )

    def tap(
        self, query: dict[str, str], authorization: bytes | None, stream: Stream
    ) -> Reply | None:
        """`GET /tap?path=&method=&status=`: NDJSON summaries while the client stays."""
        credential = self.tap_credential
        if credential is None and self.mesh_view is not None:
            credential = tap_credential(self.mesh_view())
        if not tap_allowed(authorization, credential):
            return text_reply(401, "tap is for the control plane: bearer credential required")
        try:
            flt = parse_query(query)
        except TapQueryError as exc:
            return text_reply(400, str(exc))
        tap = Tap(self.stats, flt, stream.write, perf_counter())
        if not tap.open():
            return text_reply(503, "too many taps open on this sidecar")
        stream.on_close = tap.close
        return None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            if self.reporter is not None:
                tg.create_task(self.reporter.run())
            if self.stats.access_log is not None:
                tg.create_task(self.stats.access_log.run())
            if self.stats.tracer is not None and self.otlp is not None:
                tg.create_task(self.stats.tracer.run(self.otlp, self.log))
