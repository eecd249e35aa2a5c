"""The gateway process: its view from the control plane, listeners, certificates, mTLS.

Built from the sidecar's parts: the snapshot stream (services the routes name), the data
plane's mesh pool with mTLS as `spiffe://<td>/ns/<ns>/sa/<gateway name>`, telemetry and
access logs. The gateway's own view comes from a long poll (control/gateway_api.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any
from urllib.parse import quote

from gossamer.gateway.cli import GatewayConfig
from gossamer.gateway.config import GatewayView, HostTable, ListenerView, parse_duration_text
from gossamer.gateway.fetch import fetch
from gossamer.gateway.listeners import EdgeListeners
from gossamer.gateway.target import GatewayTarget, Policies
from gossamer.proxy.admin import AdminServer, Reply, json_reply, text_reply
from gossamer.proxy.cli import ProxyConfig
from gossamer.proxy.control_client import ControlClient, ControlError
from gossamer.proxy.dataplane import DataPlane
from gossamer.proxy.mtls import MeshSecurity
from gossamer.proxy.outbound.target import OutboundTarget
from gossamer.proxy.runtime import HolderSink
from gossamer.proxy.state import SnapshotHolder
from gossamer.proxy.telemetry.observe import Observability
from gossamer.proxy.telemetry.stats import Stats, render_prometheus
from gossamer.proxy.workload import WorkloadSecurity

POLL_WAIT = 5.0  # seconds a config poll may hang (replicas stay live by polling)
RETRY = 1.0


def log(message: str) -> None:
    print(f"gossamer-gateway: {message}", file=sys.stderr, flush=True)


class GatewayClient(ControlClient):
    """The control client of a proxy that does not register but streams as its gateway."""

    def __init__(self, *args: Any, service: str, namespace: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.service = service
        self.namespace = namespace

    def _stream_path(self) -> str:
        path = super()._stream_path()
        return path + f"&service={quote(self.service)}&namespace={quote(self.namespace)}"


class GatewayState:
    """What every listener's target reads per request; swapped whole, never mutated."""

    def __init__(self) -> None:
        self.view: GatewayView | None = None
        self.digest = ""
        self.policies: Policies | None = None
        self.tables: dict[str, HostTable] = {}


class Gateway:
    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        self.key = f"{cfg.namespace}/{cfg.name}"
        self.holder = SnapshotHolder()
        self.sink = HolderSink(self.holder, cfg.namespace)
        self.stats = Stats(self.key, "")
        self.security = MeshSecurity(self.holder, self.key, self.stats.tls_handshake_failure)
        self.stats.mesh_security = self.security
        self.dataplane = DataPlane(self.holder, None, self.stats, mesh_security=self.security)
        self.client = GatewayClient(
            cfg.control, cfg.proxy_id, self.sink, registration=None, watch=[],
            token=cfg.token, log=log, service=cfg.name, namespace=cfg.namespace,
        )  # fmt: skip
        self.holder.on_discover = self.client.watch
        proxy_cfg = ProxyConfig(
            service=cfg.name, app_port=1, namespace=cfg.namespace, control=cfg.control,
            proxy_id=cfg.proxy_id, token=cfg.token, token_file=cfg.token_file,
            access_log=cfg.access_log, report_interval=cfg.report_interval,
            trace_sampling=cfg.trace_sampling, otlp_endpoint=cfg.otlp_endpoint,
        )  # fmt: skip
        self.workload = WorkloadSecurity(
            proxy_cfg, self.client, self.security, lambda: (self.sink.wire or {}).get("mesh"), log
        )
        self.observe = Observability(proxy_cfg, self.stats, self.client, log)
        self.state = GatewayState()
        self.ports: dict[str, int] = {}
        self.edge = EdgeListeners(self.dataplane, cfg, self.ports, self._make_target, log)
        self.stats_server = AdminServer(
            {"/metrics": self._metrics, "/ready": self._ready, "/config": self._config}
        )
        self.ready = asyncio.Event()
        self.state_changed = asyncio.Event()  # a new GatewayState was installed
        self.bound = asyncio.Event()  # the first view's listeners are bound

    @property
    def policies(self) -> Policies | None:
        return self.state.policies

    @property
    def tables(self) -> dict[str, HostTable]:
        return self.state.tables

    def _metrics(self) -> Reply:
        return 200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(self.stats)

    def _config(self) -> Reply:
        view = self.state.view
        return json_reply(
            200,
            {
                "id": self.cfg.proxy_id,
                "gateway": self.key,
                "hash": self.state.digest,
                "replicas": view.replicas if view is not None else None,
                "services": list(view.services) if view is not None else [],
                "ports": self.ports,
                "snapshot": self.client.version,
            },
        )

    def _ready(self) -> Reply:
        return text_reply(200, "ready") if self.ready.is_set() else text_reply(503, "not ready")

    # the view ------------------------------------------------------------------------------

    async def _poll_loop(self, tg: asyncio.TaskGroup) -> None:
        await self.workload.credentials_ready.wait()
        cfg = self.cfg
        base = f"/api/v1/proxies/{quote(cfg.proxy_id, safe='')}/gateway"
        base += f"?namespace={cfg.namespace}&name={cfg.name}"
        while True:
            wait = POLL_WAIT if self.state.view is not None else 0
            path = f"{base}&known={self.state.digest}&wait={wait}"
            try:
                status, body = await self.client.http.request("GET", path, time_limit=wait + 10)
            except ControlError as exc:
                log(f"gateway view: {exc}")
                await asyncio.sleep(RETRY)
                continue
            if status != 200 or not isinstance(body, dict):
                log(f"gateway view: {status} {body}")
                await asyncio.sleep(RETRY)
                continue
            if body.get("unchanged"):
                continue
            try:
                view = GatewayView.from_wire(body["view"])
                await self._apply(view, str(body["hash"]), tg)
            except (KeyError, ValueError, OSError) as exc:
                log(f"gateway view not applied: {exc}")
                await asyncio.sleep(RETRY)

    async def _apply(self, view: GatewayView, digest: str, tg: asyncio.TaskGroup) -> None:
        old = self.state.view
        state = GatewayState()
        state.view, state.digest = view, digest
        state.policies = self._policies(old, view)
        state.tables = self._tables(view)
        self.state = state
        await self.edge.bind(view)
        tg.create_task(self._watch(view.services))
        self.bound.set()
        self.state_changed.set()

    async def _watch(self, keys: tuple[str, ...]) -> None:
        """Add the services the routes name to the stream's view (until it has them)."""
        for key in keys:
            while True:
                snap = self.holder.current
                if snap is not None and key in snap.services:
                    break
                try:
                    await self.client.watch(key)  # also remembered for reconnects
                    break
                except ControlError:
                    await asyncio.sleep(RETRY / 4)  # no stream yet: ask again shortly

    def _policies(self, old: GatewayView | None, view: GatewayView) -> Policies:
        """New policy objects, except that unchanged rate limits keep their buckets."""
        policies = Policies(view, parse_duration_text)
        before = self.state.policies
        if before is not None and old is not None and old.replicas == view.replicas:
            for key, spec in view.rate_limit_policies.items():
                if old.rate_limit_policies.get(key) == spec and key in before.limits:
                    policies.limits[key] = before.limits[key]
        if before is not None:
            for key in list(policies.auth):
                kept = before.auth.get(key)
                if kept is not None and old is not None:
                    if old.auth_policies.get(key) == view.auth_policies.get(key):
                        policies.auth[key] = kept  # keeps its fetched JWKS
        return policies

    def _tables(self, view: GatewayView) -> dict[str, HostTable]:
        snap = self.holder.current
        if snap is None:
            return {}
        return {item.name: HostTable.build(view, item, snap) for item in view.listeners}

    async def _follow_snapshots(self) -> None:
        while True:
            await self.holder.changed()
            view = self.state.view
            if view is not None:
                state = GatewayState()
                state.view, state.digest = view, self.state.digest
                state.policies = self.state.policies
                state.tables = self._tables(view)
                self.state = state
                self.state_changed.set()

    # listeners -----------------------------------------------------------------------------

    def _make_target(
        self, item: ListenerView, tg: asyncio.TaskGroup, outbound: OutboundTarget
    ) -> GatewayTarget:
        return GatewayTarget(
            self.holder, outbound, item, self, tg, fetch,
            trusted_proxies=self.cfg.trusted_proxies, max_body=self.cfg.max_body,
        )  # fmt: skip

    # lifecycle -----------------------------------------------------------------------------

    def _serving(self) -> bool:
        """A view, a snapshot holding every service its routes name, tables built."""
        view, snap = self.state.view, self.holder.current
        if view is None or snap is None or not self.state.tables:
            return False
        return all(key in snap.services for key in view.services)

    async def _announce(self) -> None:
        while not self._serving():
            await self.state_changed.wait()
            self.state_changed.clear()
        await self.bound.wait()
        await self.workload.identity_ready.wait()
        self.ready.set()
        ports = " ".join(f"{k}={v}" for k, v in sorted(self.ports.items()))
        print(f"gossamer-gateway ready {ports} id={self.cfg.proxy_id}", flush=True)
        log(f"ready: {self.key} on {ports}")

    async def _control(self) -> None:
        await self.workload.obtain_credentials()
        await self.client.run()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            self.ports["stats"] = await self.stats_server.start(
                self.cfg.address, self.cfg.stats_port
            )
        except OSError as exc:
            log(f"cannot bind: {exc}")
            return 1
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._control()),
                tg.create_task(self.workload.run(self.holder)),
                tg.create_task(self._poll_loop(tg)),
                tg.create_task(self._follow_snapshots()),
                tg.create_task(self.edge.reload_certs()),
                tg.create_task(self.observe.run()),
                tg.create_task(self._announce()),
            ]
            await stop.wait()
            log("signal received; draining")
            async with asyncio.TaskGroup() as drain:
                for _, listener, _ in self.edge.listeners.values():
                    drain.create_task(listener.drain(self.cfg.drain_grace))
            for task in tasks:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.dataplane.close()
        await self.stats_server.close()
        self.edge.discard_scratch()
        return 0


def run_gateway(cfg: GatewayConfig) -> int:
    if os.environ.get("GOSSAMER_PROXY_LOOP") == "asyncio":
        return asyncio.run(Gateway(cfg).run())
    import uvloop

    return uvloop.run(Gateway(cfg).run())
