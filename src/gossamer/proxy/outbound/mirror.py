"""RequestMirror: a copy of a finished request to a shadow backend, its answer discarded.

The copy leaves once the main exchange is over, so the shadow can never delay, fail or
change what the caller gets. It rides the same upstream pool (keep-alive, and mTLS when
the pool carries it) as a callback-driven call, no task per copy. Bodies are mirrored
only while the exchange kept them for replay (up to REPLAY_LIMIT); larger ones are not
mirrored at all (never a truncated copy) and are counted as skipped.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from gossamer.proxy.filters import shadow_authority
from gossamer.proxy.http.head import LAST_CHUNK, RequestHead, ResponseHead, serialize_request

if TYPE_CHECKING:
    from gossamer.proxy.http.exchange import Exchange
    from gossamer.proxy.pool import UpstreamConnection, UpstreamPool
    from gossamer.proxy.routing import Mirror
    from gossamer.proxy.snapshot import Backend, Endpoint
    from gossamer.proxy.telemetry.stats import Stats


class MirrorCounters:
    __slots__ = ("failed", "sent", "skipped")

    def __init__(self) -> None:
        self.sent = 0  # copies started
        self.failed = 0  # no endpoint, overflow, connect failure, timeout, reset or 5xx
        self.skipped = 0  # sampled, but the body was too large to keep


_BY_STATS: weakref.WeakKeyDictionary[Any, MirrorCounters] = weakref.WeakKeyDictionary()


def counters_for(stats: Stats | None) -> MirrorCounters:
    """One set of counters per sidecar (its Stats), shown on /metrics, whichever listener
    sent the copies."""
    if stats is None:
        return MirrorCounters()
    counters = _BY_STATS.get(stats)
    if counters is None:
        counters = _BY_STATS[stats] = MirrorCounters()
        c = counters
        register = stats.register_gauge
        register("gossamer_mirror_copies_sent", "Mirror copies sent since start.", lambda: c.sent)
        register(
            "gossamer_mirror_copies_failed",
            "Mirror copies that failed (no endpoint, overflow, connect, timeout, 5xx) since start.",
            lambda: c.failed,
        )
        register(
            "gossamer_mirror_copies_skipped",
            "Sampled mirror copies not sent because the body was over the replay bound.",
            lambda: c.skipped,
        )
    return counters


def shadow_request(ex: Exchange) -> bytes | None:
    """The bytes of the copy (head with ``-shadow`` Host, whole body), or None when the
    body was not kept."""
    log = ex.sent_log
    if log is None or not ex.replayable:
        return None
    head = ex.head
    copy = RequestHead()
    for slot in RequestHead.__slots__:
        setattr(copy, slot, getattr(head, slot))
    copy.headers = [
        (name, shadow_authority(value)) if name == b"host" else (name, value)
        for name, value in head.headers
    ]
    parts = [
        serialize_request(
            copy, ex.upstream_target, ex.client.peer_ip, ex.client.proto, head.chunked
        )
    ]
    body = b"".join([*log, *ex.unsent])
    if head.chunked:
        if body:
            parts += (b"%x\r\n" % len(body), body, b"\r\n")
        parts.append(LAST_CHUNK)
    else:
        parts.append(body)
    return b"".join(parts)


class MirrorSender:
    def __init__(
        self,
        rand: Callable[[], float],
        loop: asyncio.AbstractEventLoop,
        stats: Stats | None = None,
    ) -> None:
        self.rand = rand
        self.loop = loop
        self.counters = counters_for(stats)

    def send(self, ex: Exchange, mirrors: Sequence[Mirror]) -> None:
        """Sample each mirror by its percent and send it a copy of ``ex``'s request."""
        if not ex.request_done or ex.head.upgrade:
            return
        data: bytes | None = None
        for mirror in mirrors:
            if mirror.percent < 100 and self.rand() * 100.0 >= mirror.percent:
                continue
            if data is None:
                data = shadow_request(ex)
                if data is None:
                    self.counters.skipped += 1
                    return
            backend = mirror.backend
            now = self.loop.time()
            endpoint = backend.balancer.pick(now) if backend is not None else None
            if backend is None or endpoint is None or not backend.limits.try_acquire_request():
                self.counters.failed += 1
                continue
            self.counters.sent += 1
            call = MirrorCall(self, ex.pool, backend, endpoint, data, ex.head.method == b"HEAD")
            call.start(backend.policy.request_timeout)


class _NoClient:
    """What an upstream connection expects of the client side; a mirror has none."""

    def cork(self) -> None:
        pass

    def uncork(self) -> None:
        pass


_NO_CLIENT = _NoClient()


class MirrorCall:
    """One copy in flight: plays the part of an Exchange for the upstream connection."""

    __slots__ = (
        "backend",
        "conn",
        "data",
        "done",
        "endpoint",
        "interim",
        "no_body",
        "pool",
        "sender",
        "started",
        "status",
        "timer",
    )

    client = _NO_CLIENT

    def __init__(
        self,
        sender: MirrorSender,
        pool: UpstreamPool,
        backend: Backend,
        endpoint: Endpoint,
        data: bytes,
        no_body: bool,
    ) -> None:
        self.sender = sender
        self.pool = pool
        self.backend = backend
        self.endpoint = endpoint
        self.data = data
        self.no_body = no_body
        self.conn: UpstreamConnection | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.started = 0.0
        self.status = 0
        self.interim = False
        self.done = False

    def start(self, timeout: float) -> None:
        loop = self.sender.loop
        self.started = now = loop.time()
        self.backend.balancer.start(self.endpoint, now)
        self.timer = loop.call_later(timeout, self._timed_out)
        key = (self.endpoint.address, self.endpoint.port)
        conn = self.pool.acquire(key, now)
        if conn is not None:
            self._attach(conn)
        else:
            self.pool.connect(key, self.backend.policy.connect_timeout, self._connected)

    def _connected(self, conn: UpstreamConnection | None, reason: str) -> None:
        if conn is None:
            self._finish(False)
        elif self.done:
            self.pool.release(conn, self.sender.loop.time())
        else:
            self._attach(conn)

    def _attach(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        conn.bind(cast(Any, self), self.no_body)
        conn.write(self.data)

    def _timed_out(self) -> None:
        self.timer = None
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.abort()
        self._finish(False)

    def _finish(self, ok: bool) -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        now = self.sender.loop.time()
        self.backend.balancer.finish(self.endpoint, now, now - self.started, ok)
        self.backend.limits.release_request()
        if not ok:
            self.sender.counters.failed += 1

    # the upstream connection's calls (see Exchange) ---------------------------------------

    def on_response_head(self, head: ResponseHead) -> None:
        self.interim = head.status < 200
        self.status = head.status

    def on_response_body(self, data: bytes) -> None:
        pass  # discarded: a shadow's answer never reaches anyone

    def on_response_end(self, trailers: Any) -> None:
        if self.interim:
            self.interim = False
            return
        conn, self.conn = self.conn, None
        if conn is not None:
            if conn.reader_keep_alive():
                self.pool.release(conn, self.sender.loop.time())
            else:
                conn.close()
        self._finish(self.status < 500)

    def upstream_failed(self, status: int, reason: str, proven_unsent: bool) -> None:
        self.conn = None
        self._finish(False)

    def upstream_write_paused(self, paused: bool) -> None:
        pass

    def tunnel_to_client(self, data: bytes) -> None:
        pass  # upgrades are never mirrored

    def tunnel_closed(self) -> None:
        self._finish(False)
