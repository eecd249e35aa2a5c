"""The sidecar's data plane: listeners, upstream pools and their background tasks.

All background work (new upstream connections, pool sweepers, on-demand discovery)
runs in one task group owned by a supervisor task that `close()` ends and awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from collections.abc import Callable
from typing import Any, cast

from gossamer.proxy.http.exchange import Target
from gossamer.proxy.http.listener import Identify, Listener, ListenerConfig
from gossamer.proxy.http.server import ClientConnection
from gossamer.proxy.inbound.acceptor import PeekingAcceptor
from gossamer.proxy.inbound.listener import Authorizer, make_inbound_listener
from gossamer.proxy.mtls import MeshSecurity
from gossamer.proxy.outbound.target import DISCOVERY_TIMEOUT, OutboundTarget
from gossamer.proxy.pool import DEFAULT_IDLE_TIMEOUT, UpstreamPool
from gossamer.proxy.state import SnapshotHolder
from gossamer.proxy.telemetry.stats import Stats


class _Stop(Exception):
    """Raised inside the task group to cancel every background task at close."""


class DataPlane:
    def __init__(
        self,
        holder: SnapshotHolder,
        identity: Any,
        stats: Stats,
        *,
        header_timeout: float = 10.0,
        pool_idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        mesh_client_ssl: ssl_module.SSLContext | None = None,
        inbound_server_ssl: ssl_module.SSLContext | None = None,
        authorize: Authorizer | None = None,
        identify: Identify | None = None,
        discovery_timeout: float = DISCOVERY_TIMEOUT,
        mesh_security: MeshSecurity | None = None,
    ) -> None:
        self.mesh_security = mesh_security  # mTLS between sidecars (proxy/mtls.py)
        if mesh_security is not None:
            mesh_security.on_expired = self._retire_mtls
        self.holder = holder
        self.identity = identity
        self.stats = stats
        self.header_timeout = header_timeout
        self.pool_idle_timeout = pool_idle_timeout
        self.mesh_client_ssl = mesh_client_ssl
        self.inbound_server_ssl = inbound_server_ssl
        self.authorize = authorize
        self.identify = identify
        self.discovery_timeout = discovery_timeout  # bounded wait for on-demand discovery
        self.listeners: list[Listener] = []
        self._task_group: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.mesh_pool: UpstreamPool | None = None  # to other sidecars (and egress)
        self.app_pool: UpstreamPool | None = None  # to the local app
        self.egress_pool: UpstreamPool | None = None  # to hosts outside the mesh (ALLOW_ANY)

    async def _started(self) -> asyncio.TaskGroup:
        if self._task_group is None:
            ready: asyncio.Future[asyncio.TaskGroup] = asyncio.get_running_loop().create_future()
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise(ready))
            self._task_group = await ready
        return self._task_group

    async def _supervise(self, ready: asyncio.Future[asyncio.TaskGroup]) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self.mesh_pool = self._pool(tg, self.mesh_client_ssl, self.mesh_security)
                self.app_pool = self._pool(tg, None)
                self.egress_pool = self._pool(tg, None)
                for pool in (self.mesh_pool, self.app_pool, self.egress_pool):
                    tg.create_task(pool.run_sweeper())
                ready.set_result(tg)
                await self._stop.wait()
                raise _Stop
        except* _Stop:
            pass

    def _pool(
        self,
        tg: asyncio.TaskGroup,
        ssl: ssl_module.SSLContext | None,
        security: MeshSecurity | None = None,
    ) -> UpstreamPool:
        return UpstreamPool(
            tg,
            self.pool_idle_timeout,
            ssl,
            on_connection_change=self.stats.upstream_connection,
            mesh_security=security,
        )

    def _config(self, proto: bytes = b"http") -> ListenerConfig:
        return ListenerConfig(header_timeout=self.header_timeout, proto=proto)

    async def start_outbound(self, host: str, port: int) -> int:
        tg = await self._started()
        assert self.mesh_pool is not None
        target = OutboundTarget(
            self.holder,
            self.stats,
            tg,
            egress_pool=self.egress_pool,
            discovery_timeout=self.discovery_timeout,
        )
        return await self._listen(
            Listener(target, self.mesh_pool, self.stats, "outbound", self._config()), host, port
        )

    async def start_upstream(self, service_key: str, host: str, port: int) -> int:
        """A plain listener where every request goes to `service_key` ("ns/name")."""
        tg = await self._started()
        assert self.mesh_pool is not None
        target = OutboundTarget(
            self.holder,
            self.stats,
            tg,
            service_key=service_key,
            egress_pool=self.egress_pool,
            discovery_timeout=self.discovery_timeout,
        )
        return await self._listen(
            Listener(target, self.mesh_pool, self.stats, "outbound", self._config()), host, port
        )

    async def start_edge(
        self,
        make_target: Callable[[asyncio.TaskGroup, OutboundTarget], Target],
        host: str,
        port: int,
        ssl: ssl_module.SSLContext | None = None,
    ) -> Listener:
        """A listener whose target wraps an outbound one: the gateway, built from these parts."""
        tg = await self._started()
        assert self.mesh_pool is not None
        outbound = OutboundTarget(self.holder, self.stats, tg, egress_pool=None)
        config = self._config(b"https" if ssl is not None else b"http")
        target = make_target(tg, outbound)
        listener = Listener(target, self.mesh_pool, self.stats, "outbound", config)
        await self._listen(listener, host, port, ssl)
        return listener

    async def start_inbound(self, host: str, port: int, app_host: str, app_port: int) -> int:
        tg = await self._started()
        assert self.app_pool is not None
        tls = self.inbound_server_ssl is not None or self.mesh_security is not None
        listener = make_inbound_listener(
            self.app_pool,
            self.stats,
            app_host,
            app_port,
            config=self._config(b"https" if tls else b"http"),
            authorize=self.authorize,
            server_ssl=self.inbound_server_ssl,
            identify=self.identify or (self.mesh_security.identify if self.mesh_security else None),
        )
        if self.mesh_security is not None:
            # mTLS or (PERMISSIVE) plaintext, chosen per connection by its first byte.
            acceptor = PeekingAcceptor(lambda: ClientConnection(listener), self.mesh_security)
            bound = await acceptor.start(host, port, tg)
            listener.server = cast(asyncio.Server, acceptor)
            self.listeners.append(listener)
            return bound
        return await self._listen(listener, host, port, self.inbound_server_ssl)

    async def _listen(
        self, listener: Listener, host: str, port: int, ssl: ssl_module.SSLContext | None = None
    ) -> int:
        bound = await listener.start(host, port, ssl)
        self.listeners.append(listener)
        return bound

    def _retire_mtls(self) -> None:
        """Our SVID expired: no traffic on the connections it authenticated."""
        if self.mesh_pool is not None:
            self.mesh_pool.retire_all()
        for listener in self.listeners:
            if listener.direction == "inbound":
                for conn in list(listener.connections):
                    if conn.identity is not None:
                        conn.start_drain()

    async def drain(self, grace: float) -> None:
        """Stop accepting; let in-flight requests finish within `grace` seconds."""
        async with asyncio.TaskGroup() as tg:
            for listener in self.listeners:
                tg.create_task(listener.drain(grace))

    async def close(self) -> None:
        for listener in self.listeners:
            listener.close()
        for pool in (self.mesh_pool, self.app_pool, self.egress_pool):
            if pool is not None:
                pool.close_all()
        self._stop.set()
        if self._supervisor is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
