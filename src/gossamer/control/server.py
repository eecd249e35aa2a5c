"""The control-plane server: REST API, registry, and the proxy snapshot streams.

server = ControlServer(store, port=0)
async with asyncio.TaskGroup() as tg:
    tg.create_task(server.run())
    await server.ready.wait()        # server.port is the bound port from here on
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from gossamer import __version__
from gossamer.control.apply_api import ApplyApi
from gossamer.control.audit_api import audit_routes
from gossamer.control.auth import AUTHENTICATOR_KEY, Authenticator, auth_middleware
from gossamer.control.ca_api import SecurityApi
from gossamer.control.canary.metrics import TelemetryMetrics
from gossamer.control.canary.runner import CanaryRunner
from gossamer.control.canary_api import CanaryApi
from gossamer.control.discovery_api import DiscoveryApi
from gossamer.control.errors import ApiError, error_middleware, json_response
from gossamer.control.fanout import Fanout
from gossamer.control.gateway_api import GatewayApi
from gossamer.control.metrics_api import MetricsApi
from gossamer.control.openapi import build_openapi
from gossamer.control.proxies_api import SUPPORTED_PROTOCOLS, ProxyApi
from gossamer.control.registry import Registry
from gossamer.control.resources_api import ResourceApi
from gossamer.control.security import Security
from gossamer.control.session import session_routes
from gossamer.control.state import MeshState
from gossamer.control.tap_api import TapApi
from gossamer.control.telemetry import TelemetryStore
from gossamer.model import KINDS
from gossamer.store.base import Compacted, Record, Store
from gossamer.ui import add_dashboard_routes

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 8 * 1024 * 1024
STATE_CATCH_UP_SECONDS = 2.0


def raise_open_file_limit() -> int:
    """Every proxy holds a stream open: lift the soft fd limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    return soft


async def load_state(store: Store) -> MeshState:
    """A MeshState of every kind. Kinds are listed one by one, so the state starts at the
    oldest listing's revision; replaying the watch from there converges."""
    records: list[Record] = []
    revisions = []
    for kind in KINDS:
        listed, revision = await store.list(kind)
        records.extend(listed)
        revisions.append(revision)
    return MeshState.from_records(records, min(revisions))


class ControlServer:
    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = 15010,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        heartbeat_seconds: float = 15.0,
        coalesce_seconds: float = 0.05,
        canary_tick_seconds: float = 1.0,
        security: Security | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # Without `security` (in-process embedding) the API is open and no CA exists;
        # `gossamer control` always passes one.
        self.security = security
        self.ssl_context = ssl_context
        self.store = store
        self.host = host
        self.port = port  # the bound port once `ready` is set
        self.wall_clock = wall_clock
        self.coalesce_seconds = coalesce_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.ready = asyncio.Event()
        self.registry = Registry(store, clock, wall_clock)
        self.fanout = Fanout(MeshState(), wall_clock)
        self.telemetry = TelemetryStore()  # golden metrics pushed by proxies
        self.deltas_compiled = 0  # flushes that changed at least one entry
        canary_metrics = TelemetryMetrics(self.telemetry, wall_clock)
        self.canaries = CanaryRunner(store, lambda: canary_metrics, wall_clock, canary_tick_seconds)
        self.app: web.Application | None = None

    async def run(self) -> None:
        """Serve until cancelled. Sets `ready` once listening with the state loaded."""
        raise_open_file_limit()
        state = await self._load_state()
        self.fanout = Fanout(state, self.wall_clock)
        if self.security is not None:
            self.security.on_bundle_change = self._trust_changed
        await self.registry.restore()
        self.app = self._app()
        if not any(r.canonical == "/" for r in self.app.router.resources()):
            add_dashboard_routes(self.app)  # the dashboard: GET / and /ui/<file>
        runner = web.AppRunner(
            self.app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        try:
            site = web.TCPSite(
                runner,
                self.host,
                self.port,
                reuse_address=True,
                backlog=1024,
                ssl_context=self.ssl_context,
            )
            await site.start()
            self.port = runner.addresses[0][1]
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.registry.run(), name="registry")
                tasks.create_task(self._follow_store(), name="store-watch")
                tasks.create_task(self._flush_loop(), name="fanout-flush")
                tasks.create_task(self.canaries.run(), name="canaries")
                self.ready.set()
        finally:
            self.ready.clear()
            for sub in list(self.fanout.subscribers.values()):
                self.fanout.unsubscribe(sub)
            await runner.cleanup()

    async def _load_state(self) -> MeshState:
        state = await load_state(self.store)
        if self.security is not None:
            state.trust = self.security.mesh_section()
        return state

    def _tap_secret(self) -> str | None:
        return self.security.tap_secret if self.security is not None else None

    def _trust_changed(self) -> None:
        assert self.security is not None
        self.fanout.state.trust = self.security.mesh_section()
        self.fanout.mesh_changed()

    def connected_proxies(self) -> list[str]:
        return [s.id for s in self.fanout.subscribers.values() if s.connected]

    async def _follow_store(self) -> None:
        while True:
            try:
                async for event in self.store.watch(self.fanout.state.revision):
                    self.fanout.note_event(event)
            except Compacted:
                # Fell behind the store's history: start over from a fresh listing.
                log.warning("store watch compacted; reloading the mesh state")
                self.fanout.reset(await self._load_state())

    async def _flush_loop(self) -> None:
        while True:
            await self.fanout.has_work.wait()
            if self.fanout.flush():
                self.deltas_compiled += 1
            # Coalesce: changes arriving in the next window are compiled together.
            await asyncio.sleep(self.coalesce_seconds)

    def _app(self) -> web.Application:
        app = web.Application(
            middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES
        )
        resources = ResourceApi(self.store, self._service_exists, self.wall_clock)
        apply = ApplyApi(self.store, self._wait_for_sync, self._service_exists, self.wall_clock)
        security_routes: list[web.RouteDef] = []
        on_heartbeat = None
        if self.security is not None:
            app[AUTHENTICATOR_KEY] = Authenticator(
                self.security.credentials, self.wall_clock, audit=self.security.audit
            )
            security_routes = SecurityApi(self.security, self.connected_proxies).routes()
            security_routes += audit_routes(self.security.audit_path)
            on_heartbeat = self._heartbeat_report
        proxies = ProxyApi(
            self.registry,
            self.fanout,
            self.heartbeat_seconds,
            self.coalesce_seconds,
            on_heartbeat=on_heartbeat,
        )
        app.add_routes(
            [
                web.get("/healthz", self._healthz),
                web.get("/readyz", self._readyz),
                web.get("/openapi.json", self._openapi),
                web.get("/api/v1/version", self._version),
                *apply.routes(),
                *DiscoveryApi(self.store).routes(),
                *CanaryApi(
                    self.store, self.canaries, self._wait_for_sync, self._state, self.wall_clock
                ).routes(),
                *MetricsApi(self.store, self.telemetry, self.wall_clock).routes(),
                *TapApi(self.store, self._tap_secret()).routes(),
                *GatewayApi(self.store, lambda: self.fanout).routes(),
                *security_routes,
                *session_routes(),
                *proxies.routes(),
                *resources.routes(),  # last: its /api/v1/{plural} matches broadly
            ]
        )
        return app

    def _heartbeat_report(self, proxy_id: str, body: dict[str, Any]) -> None:
        bundle = body.get("bundle")
        if self.security is not None and isinstance(bundle, str):
            self.security.report(proxy_id, bundle)

    async def _service_exists(self) -> Callable[[str], bool]:
        # Read your writes: let the state catch up with the store before answering.
        revision = await self.store.revision()
        await self.fanout.wait_for_state(revision, STATE_CATCH_UP_SECONDS)
        return self.fanout.state.exists

    async def _state(self) -> MeshState:
        await self._service_exists()  # catches the state up with the store
        return self.fanout.state

    async def _wait_for_sync(self, revision: int, seconds: float) -> dict[str, Any]:
        return await self.fanout.wait_for_sync(revision, seconds)

    async def _healthz(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        if not self.ready.is_set():
            raise ApiError(503, "not ready", reason="Unavailable")
        return json_response({"status": "ready", "revision": self.fanout.version})

    async def _openapi(self, request: web.Request) -> web.Response:
        return json_response(build_openapi(security=self.security is not None))

    async def _version(self, request: web.Request) -> web.Response:
        return json_response({"version": __version__, "protocols": list(SUPPORTED_PROTOCOLS)})


@contextlib.asynccontextmanager
async def running(server: ControlServer) -> AsyncIterator[ControlServer]:
    """Run `server` in a task group for the duration of the block (tests, the CLI)."""
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(server.run(), name="control-server")
        ready = tasks.create_task(server.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()  # raises why it stopped
        try:
            yield server
        finally:
            task.cancel()
