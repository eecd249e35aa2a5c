"""A bound listening socket and the client connections it accepted (for drain)."""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Callable
from typing import Any

from gossamer.proxy.http.exchange import Target
from gossamer.proxy.http.reader import MAX_HEADER_BYTES, MAX_HEADERS
from gossamer.proxy.http.server import ClientConnection
from gossamer.proxy.pool import UpstreamPool
from gossamer.proxy.telemetry.stats import Stats

# transport -> the caller's identity (e.g. its SPIFFE ID from the client certificate)
Identify = Callable[[asyncio.BaseTransport], Any]


class ListenerConfig:
    __slots__ = ("header_timeout", "idle_timeout", "max_header_bytes", "max_headers", "proto")

    def __init__(
        self,
        header_timeout: float = 10.0,
        idle_timeout: float = 60.0,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_headers: int = MAX_HEADERS,
        proto: bytes = b"http",
    ) -> None:
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.proto = proto


class Listener:
    """A bound server socket plus the connections it accepted (for drain)."""

    def __init__(
        self,
        target: Target,
        pool: UpstreamPool,
        stats: Stats,
        direction: str,
        config: ListenerConfig | None = None,
        identify: Identify | None = None,
    ) -> None:
        self.target = target
        self.identify = identify  # peer identity from the TLS transport, for authorization
        self.pool = pool
        self.stats = stats
        self.direction = direction
        self.config = config or ListenerConfig()
        self.connections: set[ClientConnection] = set()
        self.server: asyncio.Server | None = None
        self.drained = asyncio.Event()

    async def start(self, host: str, port: int, ssl: ssl_module.SSLContext | None = None) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: ClientConnection(self), host, port, ssl=ssl, backlog=1024
        )
        return int(self.server.sockets[0].getsockname()[1])

    def stop_accepting(self) -> None:
        if self.server is not None:
            self.server.close()

    async def drain(self, grace: float) -> None:
        """Stop accepting, let in-flight requests finish, close idle keep-alives."""
        self.stop_accepting()
        for conn in list(self.connections):
            conn.start_drain()
        if self.connections:
            try:
                async with asyncio.timeout(grace):
                    await self.drained.wait()
            except TimeoutError:
                pass
        self.close()

    def close(self) -> None:
        self.stop_accepting()
        for conn in list(self.connections):
            conn.abort()

    def forget(self, conn: ClientConnection) -> None:
        self.connections.discard(conn)
        if not self.connections and self.server is not None and not self.server.is_serving():
            self.drained.set()
