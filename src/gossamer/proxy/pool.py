"""Upstream keep-alive connections and their per-endpoint pools.

An `UpstreamConnection` parses responses and hands every event to the exchange it is
bound to; between exchanges it idles in its pool. Idle connections are closed after a
few seconds, before typical server idle timeouts, so a reused connection is rarely stale.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from gossamer.proxy.http import errors
from gossamer.proxy.http.head import Headers, ResponseHead
from gossamer.proxy.http.reader import FramingError, ResponseReader
from gossamer.proxy.mtls import MeshSecurity, classify

if TYPE_CHECKING:
    from gossamer.proxy.http.exchange import Exchange

EndpointKey = tuple[str, int]
ConnectCallback = Callable[["UpstreamConnection | None", str], None]

DEFAULT_IDLE_TIMEOUT = 4.0


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "closed",
        "exchange",
        "generation",
        "got_bytes",
        "idle_since",
        "keep_alive",
        "key",
        "on_close",
        "pool",
        "reader",
        "reused",
        "transport",
        "tunnel",
    )

    def __init__(self, pool: UpstreamPool, key: EndpointKey) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.reader = ResponseReader(self)
        self.exchange: Exchange | None = None
        self.reused = False
        self.got_bytes = False  # of the current response
        self.idle_since = 0.0
        self.closed = False
        self.tunnel = False
        self.keep_alive = True  # the last response allows reuse
        self.on_close: Callable[[], None] | None = None  # e.g. a circuit-breaker release
        self.generation = pool.generation  # retired (not reused) once the pool's moves on

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self.pool.stats_connections(+1)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if self.tunnel:
            if exchange is not None:
                exchange.tunnel_to_client(data)
            return
        if exchange is None:
            # Bytes on an idle connection: the server is confused; never reuse it.
            self.close()
            return
        self.got_bytes = True
        client = exchange.client
        client.cork()
        try:
            offset = self.reader.feed(data)
        except FramingError as exc:
            self.close()
            exchange.upstream_failed(exc.status, exc.reason, proven_unsent=False)
            return
        finally:
            client.uncork()
        if self.exchange is None and self.reader.in_message:
            self.close()  # bytes beyond the response we were waiting for
            return
        if offset is not None and self.exchange is not None:
            self.tunnel = True
            if offset < len(data):
                self.exchange.tunnel_to_client(data[offset:])

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()
        self.closed = True
        self.pool.forget(self)
        self.pool.stats_connections(-1)
        exchange = self.exchange
        if exchange is None:
            return
        if self.tunnel:
            exchange.tunnel_closed()
            return
        if self.reader.finish_at_eof():
            return
        self.exchange = None
        exchange.upstream_failed(
            502, errors.UPSTREAM_RESET, proven_unsent=self.reused and not self.got_bytes
        )

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_write_paused(True)

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_write_paused(False)

    # ResponseSink: forwarded to the bound exchange
    def on_response_head(self, head: ResponseHead) -> None:
        self.keep_alive = head.keep_alive
        if self.exchange is not None:
            self.exchange.on_response_head(head)

    def on_response_body(self, data: bytes) -> None:
        if self.exchange is not None:
            self.exchange.on_response_body(data)

    def on_response_end(self, trailers: Headers | None) -> None:
        if self.exchange is not None:
            self.exchange.on_response_end(trailers)

    # used by the exchange
    def bind(self, exchange: Exchange, no_body: bool) -> None:
        self.exchange = exchange
        self.got_bytes = False
        self.reader.expect_no_body(no_body)

    def reader_keep_alive(self) -> bool:
        return self.keep_alive and not self.closed and not self.reader.in_message

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        # One joined write: uvloop sends a single buffer at once, small joins are cheap.
        if self.transport is not None:
            self.transport.write(b"".join(parts))

    def pause_reading(self, paused: bool) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def close(self) -> None:
        self.exchange = None
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        self.exchange = None
        if self.transport is not None:
            self.transport.abort()
        self.closed = True
        self.pool.forget(self)


class UpstreamPool:
    """Idle keep-alive connections per endpoint; new connections are made in `task_group`."""

    def __init__(
        self,
        task_group: asyncio.TaskGroup,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        ssl: ssl_module.SSLContext | None = None,
        max_idle_per_endpoint: int = 256,
        on_connection_change: Callable[[int], None] | None = None,
        mesh_security: MeshSecurity | None = None,
    ) -> None:
        self._task_group = task_group
        self._security = mesh_security  # mTLS per new connection (proxy/mtls.py)
        self.idle_timeout = idle_timeout
        self._ssl = ssl
        self._max_idle = max_idle_per_endpoint
        self._idle: dict[EndpointKey, list[UpstreamConnection]] = {}
        self._on_connection_change = on_connection_change
        self.open_connections = 0
        self.generation = 0  # bumped by retire_all: older connections are not reused

    def stats_connections(self, delta: int) -> None:
        self.open_connections += delta
        if self._on_connection_change is not None:
            self._on_connection_change(delta)

    def acquire(self, key: EndpointKey, now: float) -> UpstreamConnection | None:
        """The most recently used idle connection to `key` that is still fresh."""
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if now - conn.idle_since > self.idle_timeout:
                conn.close()
                continue
            conn.pause_reading(False)
            return conn
        return None

    def connect(self, key: EndpointKey, timeout: float, on_ready: ConnectCallback) -> None:
        """Open a new connection in the background; `on_ready(conn, "")` or `(None, reason)`."""
        self._task_group.create_task(self._connect(key, timeout, on_ready))

    async def _connect(
        self, key: EndpointKey, connect_timeout: float, on_ready: ConnectCallback
    ) -> None:
        loop = asyncio.get_running_loop()
        security, context, expected = self._security, self._ssl, frozenset[str]()
        try:
            if security is not None:
                context, expected = security.originate(key)  # NoIdentity: fail closed
            async with asyncio.timeout(connect_timeout):
                transport, conn = await loop.create_connection(
                    lambda: UpstreamConnection(self, key), key[0], key[1], ssl=context
                )
        except TimeoutError:
            on_ready(None, errors.CONNECT_FAILURE)
            return
        except ssl_module.SSLError as exc:
            if security is not None:
                security.on_failure(classify(exc))
            on_ready(None, errors.CONNECT_FAILURE)
            return
        except (OSError, ValueError):
            on_ready(None, errors.CONNECT_FAILURE)
            return
        # Secure naming: before a byte of the request, the server must be the destination.
        if expected and security is not None:
            if not security.check_server(transport.get_extra_info("ssl_object"), expected):
                conn.abort()
                on_ready(None, errors.CONNECT_FAILURE)
                return
        on_ready(conn, "")

    def release(self, conn: UpstreamConnection, now: float) -> None:
        """Back to the pool after a complete exchange."""
        conn.exchange = None
        conn.reused = True
        if conn.closed:
            return
        if conn.generation != self.generation:
            conn.close()  # made with credentials that have since been retired
            return
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = now
        idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    def sweep(self, now: float) -> int:
        """Close connections idle longer than `idle_timeout`; returns how many."""
        closed = 0
        for key, idle in list(self._idle.items()):
            fresh = [c for c in idle if not c.closed and now - c.idle_since <= self.idle_timeout]
            for conn in idle:
                if conn not in fresh:
                    conn.closed = True
                    if conn.transport is not None:
                        conn.transport.close()
                    closed += 1
            if fresh:
                self._idle[key] = fresh
            else:
                del self._idle[key]
        return closed

    async def run_sweeper(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.sweep(asyncio.get_running_loop().time())

    def idle_count(self, key: EndpointKey | None = None) -> int:
        if key is not None:
            return len(self._idle.get(key, ()))
        return sum(len(v) for v in self._idle.values())

    def retire_all(self) -> None:
        """Close idle connections now, busy ones when their exchange ends (e.g. our
        certificate expired: no more traffic on connections it authenticated)."""
        self.generation += 1
        self.close_all()

    def close_all(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.close()
        self._idle.clear()
