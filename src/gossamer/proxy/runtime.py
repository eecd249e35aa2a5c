"""The sidecar process: listeners, control client, health probe, app (for `gossamer run`),
signals and the orderly shutdown (deregister → stop accepting → drain → stop the app).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import Any

from gossamer.proxy.admin import AdminServer, Reply, json_reply, text_reply
from gossamer.proxy.cli import ProxyConfig
from gossamer.proxy.control_client import ControlClient, Registration
from gossamer.proxy.dataplane import DataPlane
from gossamer.proxy.health import HealthProber, ProbeSpec
from gossamer.proxy.inbound.authz import InboundAuthorizer
from gossamer.proxy.launcher import App, app_environment, current_environ, exit_code
from gossamer.proxy.mtls import MeshSecurity
from gossamer.proxy.snapshot import Snapshot
from gossamer.proxy.state import SnapshotHolder
from gossamer.proxy.telemetry.observe import Observability
from gossamer.proxy.telemetry.stats import Stats, render_prometheus
from gossamer.proxy.telemetry.tap import without_tap_secret
from gossamer.proxy.workload import WorkloadSecurity


def log(message: str) -> None:
    print(f"gossamer-proxy: {message}", file=sys.stderr, flush=True)


class HolderSink:
    """Feeds stream lines into the SnapshotHolder and keeps the merged wire view for /config."""

    def __init__(self, holder: SnapshotHolder, namespace: str) -> None:
        self.holder = holder
        self.namespace = namespace  # bare names in requests resolve here
        self.wire: dict[str, Any] | None = None
        self.applied_at: float | None = None

    def apply_message(self, msg: dict[str, Any]) -> int | None:
        if msg["type"] == "snapshot":
            snap = Snapshot.from_wire(msg, self.namespace)
            wire = {
                "version": msg["version"],
                "mesh": dict(msg.get("mesh") or {}),
                "services": dict(msg.get("services") or {}),
            }
        else:
            current = self.holder.current
            if current is None or self.wire is None:
                raise ValueError("delta before any snapshot")
            snap = current.apply(msg)
            wire = self.wire
            wire["version"] = msg["version"]
            wire["services"].update(msg.get("services") or {})
            for key in msg.get("removed") or ():
                wire["services"].pop(key, None)
            if isinstance(msg.get("mesh"), dict):
                wire["mesh"] = dict(msg["mesh"])
        self.holder.update(snap)
        self.wire = wire
        self.applied_at = time.time()
        return int(snap.version)


class Sidecar:
    def __init__(self, cfg: ProxyConfig, with_app: bool) -> None:
        self.cfg = cfg
        self.with_app = with_app
        self.holder = SnapshotHolder()
        self.sink = HolderSink(self.holder, cfg.namespace)
        self.stats = Stats(f"{cfg.namespace}/{cfg.service}", cfg.labels.get("version", ""))
        own_key = f"{cfg.namespace}/{cfg.service}"
        authorize = InboundAuthorizer(self.holder, own_key, cfg.labels, self.stats)
        self.mesh_security = MeshSecurity(self.holder, own_key, self.stats.tls_handshake_failure)
        self.stats.mesh_security = self.mesh_security  # the `mtls` label of outbound series
        self.dataplane = DataPlane(
            self.holder, None, self.stats, authorize=authorize, mesh_security=self.mesh_security
        )
        self.prober = HealthProber(ProbeSpec.parse(cfg.health), cfg.app_host, cfg.app_port)
        self.client = ControlClient(
            cfg.control,
            cfg.proxy_id,
            self.sink,
            registration=None,  # set once the inbound port is bound
            watch=[key for key, _ in cfg.upstreams],
            is_healthy=lambda: self.prober.healthy,
            wait_healthy=self._ready_to_register,
            token=cfg.token,
            log=log,
        )
        self.holder.on_discover = self.client.watch
        self.workload = WorkloadSecurity(
            cfg, self.client, self.mesh_security, lambda: (self.sink.wire or {}).get("mesh"), log
        )
        self.client.report = self.workload.report  # heartbeats carry the bundle we use
        self.observe = Observability(
            cfg, self.stats, self.client, log, lambda: (self.sink.wire or {}).get("mesh")
        )
        self.stats_server = AdminServer(
            {"/metrics": self._metrics, "/ready": self._ready, "/live": self._live},
            streams={"/tap": self.observe.tap},
        )
        self.admin_server = AdminServer({"/config": self._config, "/ready": self._ready})
        self.ports: dict[str, int] = {}

    async def _control(self) -> None:
        await self.workload.obtain_credentials()  # a token, before any other request
        await self.client.run()

    async def _ready_to_register(self) -> None:
        await self.prober.wait_answered()
        # Inbound authorization reads our own entry: it refuses everything until the first
        # snapshot, so take traffic only once one is here.
        while self.holder.current is None:
            await self.holder.changed()
        await self.workload.identity_ready.wait()  # peers dial us over mTLS: have an SVID

    # admin handlers ----------------------------------------------------------------------------

    def _metrics(self) -> Reply:
        return 200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(self.stats)

    def is_ready(self) -> bool:
        return self.client.registered.is_set() and self.holder.current is not None

    def _ready(self) -> Reply:
        if self.is_ready():
            return text_reply(200, "ready")
        why = "not registered" if not self.client.registered.is_set() else "no snapshot yet"
        return text_reply(503, why)

    def _live(self) -> Reply:
        return text_reply(200, "live")

    def _config(self) -> Reply:
        return json_reply(
            200,
            {
                "id": self.cfg.proxy_id,
                "service": f"{self.cfg.namespace}/{self.cfg.service}",
                "version": self.client.version,
                "appliedAt": self.sink.applied_at,
                "registered": self.client.registered.is_set(),
                "streamConnected": self.client.stream_connected.is_set(),
                "appHealthy": self.prober.healthy,
                "watching": sorted(self.client.watching),
                "identity": self.workload.describe(),
                "snapshot": without_tap_secret(self.sink.wire),
            },
        )

    # lifecycle ---------------------------------------------------------------------------------

    async def bind(self) -> None:
        cfg, dp = self.cfg, self.dataplane
        self.ports["outbound"] = await dp.start_outbound("127.0.0.1", cfg.outbound_port)
        self.ports["inbound"] = await dp.start_inbound(
            cfg.address, cfg.inbound_port, cfg.app_host, cfg.app_port
        )
        for key, port in cfg.upstreams:
            self.ports[f"upstream.{key}"] = await dp.start_upstream(key, "127.0.0.1", port)
        self.ports["stats"] = await self.stats_server.start(cfg.address, cfg.stats_port)
        self.ports["admin"] = await self.admin_server.start("127.0.0.1", cfg.admin_port)
        self.client.registration = Registration(
            service=cfg.service,
            namespace=cfg.namespace,
            address=cfg.address,
            port=self.ports["inbound"],
            app_port=cfg.app_port,
            labels=cfg.labels,
            lease_seconds=cfg.lease,
            stats_port=self.ports["stats"],
        )

    def ready_line(self) -> str:
        ports = " ".join(f"{name}={port}" for name, port in self.ports.items())
        return f"gossamer-proxy ready {ports} id={self.cfg.proxy_id}"

    async def _announce_ready(self) -> None:
        await self.client.registered.wait()
        while self.holder.current is None:
            await self.holder.changed()
        print(self.ready_line(), flush=True)
        log(f"ready: {self.cfg.proxy_id} serving {self.cfg.namespace}/{self.cfg.service}")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.bind()
        except OSError as exc:
            log(f"cannot bind: {exc}")
            await self._close()
            return 1
        app: App | None = None
        if self.with_app:
            env = app_environment(current_environ(), self.cfg.app_port, self.ports["outbound"])
            app = App(self.cfg.command, env)
            try:
                await app.start()
            except OSError as exc:
                log(f"cannot start the app {self.cfg.command[0]!r}: {exc}")
                await self._close()
                return 127
        code = 0
        async with asyncio.TaskGroup() as tg:
            background = [
                tg.create_task(self._control()),
                tg.create_task(self.workload.run(self.holder)),
                tg.create_task(self.prober.run()),
                tg.create_task(self._announce_ready()),
                tg.create_task(self.observe.run()),
            ]
            waiters: list[asyncio.Task[Any]] = [tg.create_task(stop.wait())]
            if app is not None:
                waiters.append(tg.create_task(app.wait()))
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            app_exited = app is not None and not stop.is_set()
            log("app exited; shutting down" if app_exited else "signal received; draining")
            await self.client.deregister()
            # Inbound first: in-flight requests to the app finish while its own outbound
            # calls still work; then the app stops; then what it had in flight outbound.
            await self._drain("inbound", self.cfg.drain_grace)
            if app is not None:
                returncode = await app.stop(self.cfg.app_grace)
                if app_exited:
                    code = exit_code(returncode)
            await self._drain("outbound", self.cfg.drain_grace)
            for task in background + waiters:
                task.cancel()
        await self._close()
        return code

    async def _drain(self, direction: str, grace: float) -> None:
        async with asyncio.TaskGroup() as tg:
            for listener in self.dataplane.listeners:
                if listener.direction == direction:
                    tg.create_task(listener.drain(grace))

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await self.dataplane.close()
        await self.stats_server.close()
        await self.admin_server.close()


def run_sidecar(cfg: ProxyConfig, with_app: bool) -> int:
    # GOSSAMER_PROXY_LOOP=asyncio runs on the stdlib loop (for asyncio's debug mode).
    if os.environ.get("GOSSAMER_PROXY_LOOP") == "asyncio":
        return asyncio.run(Sidecar(cfg, with_app).run())
    import uvloop

    return uvloop.run(Sidecar(cfg, with_app).run())
