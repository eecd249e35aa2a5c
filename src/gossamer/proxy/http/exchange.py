"""One request's journey from a client connection to an upstream and back.

Everything here runs in protocol callbacks: no task per request. A `Target` (outbound
routing, the inbound app) decides where each attempt goes and whether to retry; the
exchange moves bytes, keeps flow control in both directions and re-frames bodies.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

from gossamer.proxy.http import errors
from gossamer.proxy.http.head import (
    FRAMING_CHUNKED,
    FRAMING_CLOSE,
    FRAMING_LENGTH,
    FRAMING_NONE,
    FRAMING_UPGRADE,
    LAST_CHUNK,
    Headers,
    RequestHead,
    ResponseHead,
    response_framing,
    serialize_request,
    serialize_response,
    serialize_trailers,
)

if TYPE_CHECKING:
    from gossamer.proxy.http.server import ClientConnection
    from gossamer.proxy.pool import EndpointKey, UpstreamConnection, UpstreamPool

REPLAY_LIMIT = 64 * 1024  # bodies up to this size are kept for retries
NO_BODY_LIMIT = 1 << 62  # one int compare per body chunk, no branch on "is there a limit"
BUFFER_LIMIT = 64 * 1024  # body bytes held while no upstream is attached
HOLD_LIMIT = 64 * 1024  # fixed-length responses up to this size hold their head
DEFAULT_IDLE_TIMEOUT = 60.0  # a response stalled this long is cut (policy timeouts.idle)
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_KEEP_ALIVE_10 = b"connection: keep-alive\r\n"


class Target(Protocol):
    """Where an exchange's attempts go. Implementations keep per-request state in
    `ex.route`, `ex.endpoint` and `ex.attempt` so they need no per-request objects."""

    def begin(self, ex: Exchange) -> None:
        """Decide, then call `ex.send(key, connect_timeout)` or `ex.fail(status, reason)`."""

    def retry(self, ex: Exchange, status: int, reason: str, proven_unsent: bool) -> bool:
        """An attempt failed (`status` from upstream or local). True if a retry was scheduled."""

    def done(self, ex: Exchange, status: int, ok: bool) -> None:
        """The exchange is over (for balancer and outlier bookkeeping)."""


class Exchange:
    __slots__ = (
        "attempt",
        "attempt_timer",
        "backend_limits",
        "body_limit",
        "body_mark",
        "body_size",
        "client",
        "closing",
        "connect_timeout",
        "deadline_at",
        "endpoint",
        "finished",
        "framing",
        "head",
        "held_head",
        "idle_since",
        "idle_timeout",
        "interim",
        "key",
        "limits",
        "measured_from",
        "pool",
        "reason",
        "request_done",
        "response_bytes",
        "response_mark",
        "response_ops",
        "response_started",
        "route",
        "sent_at",
        "sent_log",
        "span",
        "started_at",
        "status",
        "target",
        "timeout",
        "trailers",
        "tunnel",
        "unsent",
        "unsent_size",
        "upstream",
        "upstream_target",
    )

    def __init__(
        self,
        client: ClientConnection,
        head: RequestHead,
        target: Target,
        pool: UpstreamPool,
        now: float,
    ) -> None:
        self.client = client
        self.head = head
        self.target = target
        self.pool = pool
        self.started_at = now
        self.upstream: UpstreamConnection | None = None
        self.upstream_target = head.target
        self.unsent: list[bytes] = []
        self.unsent_size = 0
        self.sent_log: list[bytes] | None = []  # None once the body outgrew REPLAY_LIMIT
        self.body_size = 0
        self.body_limit = NO_BODY_LIMIT  # the gateway sets its --max-body (streamed bodies)
        self.body_mark = 0  # body_size when the request timer was last armed
        self.request_done = False
        self.trailers: Headers | None = None
        self.response_started = False
        self.framing = FRAMING_NONE
        self.interim = False
        self.held_head: bytes | None = None  # a response head not yet written
        self.closing = not head.keep_alive
        self.finished = False
        self.tunnel = False
        self.status = 0
        self.reason = ""  # set for locally generated responses
        self.response_bytes = 0
        self.response_ops: tuple[Any, ...] = ()  # ResponseHeaderModifier plans (filters.py)
        self.response_mark = 0  # response_bytes at the last idle check
        self.idle_since = 0.0
        self.idle_timeout = DEFAULT_IDLE_TIMEOUT  # set by the target from its policy
        self.attempt = 0
        self.route: Any = None
        self.endpoint: Any = None
        self.deadline_at = 0.0  # loop time; 0: none. The client connection's timer watches it.
        self.timeout = 0.0
        self.attempt_timer: asyncio.TimerHandle | None = None
        self.key: EndpointKey = ("", 0)
        self.connect_timeout = 5.0
        self.limits: Any = None  # held while a new connection is being made
        self.backend_limits: Any = None  # the limits of the current attempt's backend
        self.span: Any = None  # a sampled trace span (telemetry/tracing.py)
        self.sent_at = 0.0  # perf_counter() when the current attempt started (telemetry)
        # perf_counter() at the start: the loop clock is cached per iteration (uvloop: in ms)
        self.measured_from = perf_counter()

    @property
    def replayable(self) -> bool:
        return self.sent_log is not None and self.body_size <= REPLAY_LIMIT

    @property
    def idempotent(self) -> bool:
        return self.head.method in IDEMPOTENT

    # deciding ---------------------------------------------------------------------------

    def set_deadline(self, seconds: float) -> None:
        """The request timeout: from now until the response starts, not counting time
        the client is still sending its body (as Envoy's route timeout).

        No timer per request (a uvloop timer costs ~2.5 us to make and cancel): the client
        connection's one timer, re-armed lazily, calls `deadline_passed` when it is due."""
        self.timeout = seconds
        self.deadline_at = self.client.loop.time() + seconds
        self.client.arm(self.deadline_at)

    def set_attempt_deadline(self, seconds: float | None) -> None:
        """A per-attempt timeout (the route's backendRequest), until the response head."""
        if self.attempt_timer is not None:
            self.attempt_timer.cancel()
            self.attempt_timer = None
        if seconds:
            self.attempt_timer = self.client.loop.call_later(seconds, self._attempt_timed_out)

    def _attempt_timed_out(self) -> None:
        self.attempt_timer = None
        if self.finished or self.response_started:
            return
        self._attempt_failed(504, errors.UPSTREAM_TIMEOUT, proven_unsent=False)

    def send(self, key: EndpointKey, connect_timeout: float, limits: Any = None) -> None:
        """Start an attempt to `key`: a pooled connection now, or a new one soon.

        `limits` (a resilience.Limits) bounds requests waiting for a new connection and
        the connections opened: beyond either, the answer is 503 overflow.
        """
        if self.finished:
            return
        self.attempt += 1
        self.sent_at = perf_counter()
        self.key = key
        self.connect_timeout = connect_timeout
        self.backend_limits = limits
        conn = self.pool.acquire(key, self.client.loop.time())
        if conn is not None:
            self._attach(conn)
            return
        if limits is not None:
            if not limits.try_acquire_pending():
                self.fail(503, errors.OVERFLOW)
                return
            if not limits.try_acquire_connection():
                limits.release_pending()
                self.fail(503, errors.OVERFLOW)
                return
        self.limits = limits
        self.pool.connect(key, connect_timeout, self._connected)

    def _connected(self, conn: UpstreamConnection | None, reason: str) -> None:
        limits, self.limits = self.limits, None
        if limits is not None:
            limits.release_pending()
            if conn is None:
                limits.release_connection()
            else:
                conn.on_close = limits.release_connection
        if conn is None:
            if not self.finished:
                self._attempt_failed(503, reason, proven_unsent=True)
            return
        if self.finished or self.upstream is not None:
            self.pool.release(conn, self.client.loop.time())
            return
        self._attach(conn)

    def _attach(self, conn: UpstreamConnection) -> None:
        self.upstream = conn
        head = self.head
        conn.bind(self, head.method == b"HEAD")
        parts = [
            serialize_request(
                head, self.upstream_target, self.client.peer_ip, self.client.proto, head.chunked
            )
        ]
        chunked = head.chunked and not self.tunnel
        for data in self.unsent:
            if chunked:
                parts += (b"%x\r\n" % len(data), data, b"\r\n")
            else:
                parts.append(data)
        if self.sent_log is not None:
            self.sent_log.extend(self.unsent)
        self.unsent = []
        self.unsent_size = 0
        if self.request_done and chunked:
            parts.append(serialize_trailers(self.trailers) if self.trailers else LAST_CHUNK)
        conn.writelines(parts)
        self.client.pause_for_buffer(False)

    def fail(self, status: int, reason: str, extra: bytes = b"") -> None:
        """Answer locally (no upstream response has been relayed yet); `extra`: header lines."""
        if self.finished:
            return
        if self.response_started:
            self.client.abort()
            self._close(False)
            return
        self.status = status
        self.reason = reason
        close = self.closing or not self.request_done or self.client.draining
        self.client.write(
            errors.error_response(
                status, reason, close=close, request_id=self.head.request_id, extra=extra
            )
        )
        self.response_started = True
        self._drop_upstream()
        self.closing = close
        self._close(False)

    def _attempt_failed(self, status: int, reason: str, proven_unsent: bool) -> None:
        self._drop_upstream()
        self.held_head = None
        if self._rewind() and self.target.retry(self, status, reason, proven_unsent):
            return
        self.fail(status, reason)

    def _rewind(self) -> bool:
        """Prepare the body for another attempt; False when it cannot be replayed."""
        if self.response_started or not self.replayable or self.sent_log is None:
            return False
        if self.sent_log:
            self.unsent = self.sent_log + self.unsent
            self.unsent_size = sum(len(d) for d in self.unsent)
            self.sent_log = []
        return True

    def deadline_passed(self) -> None:
        self.deadline_at = 0.0
        if self.finished:
            return
        if self.response_started:
            self._check_response_idle()
            return
        if not self.request_done:
            if self.body_size > self.body_mark:
                # Still uploading: the clock starts at the request's end.
                self.body_mark = self.body_size
                self.set_deadline(self.timeout)
                return
            self.fail(408, errors.REQUEST_TIMEOUT)  # the client stalled mid-body
            return
        self.fail(504, errors.UPSTREAM_TIMEOUT)

    def _check_response_idle(self) -> None:
        """A streaming response may take any time, but not stall longer than idle_timeout."""
        now = self.client.loop.time()
        if self.response_bytes > self.response_mark:
            self.response_mark = self.response_bytes
            self.idle_since = now
        elif now - self.idle_since >= self.idle_timeout:
            self.reason = errors.UPSTREAM_TIMEOUT
            self.client.abort()  # mid-body: no status can be sent any more
            self._drop_upstream(abort=True)
            self._close(False)
            return
        self.deadline_at = self.idle_since + self.idle_timeout
        self.client.arm(self.deadline_at)

    # request side (from the client connection) ---------------------------------------------

    def request_body(self, data: bytes) -> None:
        self.body_size += len(data)
        if self.body_size > self.body_limit:
            self.fail(413, errors.BODY_TOO_LARGE)  # closes: the rest is never read
            return
        conn = self.upstream
        if conn is not None:
            if self.head.chunked:
                conn.writelines([b"%x\r\n" % len(data), data, b"\r\n"])
            else:
                conn.write(data)
            log = self.sent_log
            if log is not None:
                if self.body_size <= REPLAY_LIMIT:
                    log.append(data)
                else:
                    self.sent_log = None
        else:
            self.unsent.append(data)
            self.unsent_size += len(data)
            if self.body_size > REPLAY_LIMIT:
                self.sent_log = None
            if self.unsent_size > BUFFER_LIMIT:
                self.client.pause_for_buffer(True)

    def request_end(self, trailers: Headers | None) -> None:
        self.request_done = True
        self.trailers = trailers
        conn = self.upstream
        if conn is not None and self.head.chunked:
            conn.write(serialize_trailers(trailers) if trailers else LAST_CHUNK)

    def client_tunnel_data(self, data: bytes) -> None:
        """Raw bytes after an Upgrade request."""
        self.tunnel = True
        conn = self.upstream
        if conn is not None:
            conn.write(data)  # before the 101 the server just has them early
        else:
            self.unsent.append(data)
            self.unsent_size += len(data)

    def client_write_paused(self, paused: bool) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading(paused)

    def client_lost(self) -> None:
        if self.tunnel:
            self._drop_upstream()  # an upgraded exchange outlives its HTTP part
        if not self.finished:
            self._drop_upstream(abort=True)
            self._close(False)

    # response side (from the upstream connection) ------------------------------------------

    def upstream_write_paused(self, paused: bool) -> None:
        self.client.pause_for_upstream(paused)

    def on_response_head(self, head: ResponseHead) -> None:
        status = head.status
        if status < 200 and status != 101:
            if self.head.version == b"1.1":  # interim responses are relayed as they are
                self.client.write(serialize_response(head, FRAMING_NONE, False))
            self.interim = True
            return
        if status >= 500 and not self.response_started and self._rewind():
            conn = self.upstream
            self.upstream = None
            if self.target.retry(self, status, "", False):
                if conn is not None:  # unbinds it: its remaining events go nowhere
                    conn.close()
                return
            self.upstream = conn
        self.status = status
        client_version = self.head.version
        framing = self.framing = response_framing(self.head, head)
        if (
            framing == FRAMING_CLOSE
            or self.client.draining
            or (self.head.upgrade and status != 101)
        ):
            self.closing = True
        extra = b""
        if client_version == b"1.0" and not self.closing:
            extra = _KEEP_ALIVE_10
        for ops in self.response_ops:
            head.headers = ops.apply(head.headers)
        out = serialize_response(head, framing, self.closing, extra)
        length = head.content_length
        if framing == FRAMING_LENGTH and length and length <= HOLD_LIMIT and self.replayable:
            # Hold a small response's head until its body starts: one send instead of
            # two, and an upstream that dies between head and body (servers often write
            # them separately) can still be retried as if nothing had been answered.
            self.held_head = out
            return
        self._start_response(out)
        if framing == FRAMING_UPGRADE:
            self.client.start_tunnel()

    def _start_response(self, head: bytes) -> None:
        self.held_head = None
        self.response_started = True
        # From here the request timer only watches for a stalled response (idle_timeout).
        self.idle_since = self.client.loop.time()
        self.response_mark = self.response_bytes
        if self.attempt_timer is not None:
            self.attempt_timer.cancel()
            self.attempt_timer = None
        self.client.write(head)

    def on_response_body(self, data: bytes) -> None:
        self.response_bytes += len(data)
        if self.held_head is not None:
            self._start_response(self.held_head)
        if self.framing == FRAMING_CHUNKED:
            self.client.writelines([b"%x\r\n" % len(data), data, b"\r\n"])
        else:
            self.client.write(data)

    def on_response_end(self, trailers: Headers | None) -> None:
        if self.interim:
            self.interim = False  # the end of a 1xx; the final response follows
            return
        if self.finished:
            return
        if self.held_head is not None:
            self._start_response(self.held_head)
        if self.framing == FRAMING_CHUNKED:
            self.client.write(serialize_trailers(trailers) if trailers else LAST_CHUNK)
        conn = self.upstream
        if conn is not None and self.framing != FRAMING_UPGRADE:
            self.upstream = None
            if self.request_done and conn.reader_keep_alive():
                self.pool.release(conn, self.client.loop.time())
            else:
                conn.close()
        if not self.request_done:
            self.closing = True  # the rest of the request body cannot be framed for anyone
        self._close(True)

    def upstream_failed(self, status: int, reason: str, proven_unsent: bool) -> None:
        """The upstream connection broke or spoke garbage."""
        if self.finished:
            return
        if self.response_started:
            self.client.abort()
            self._drop_upstream()
            self._close(False)
            return
        if proven_unsent and self.idempotent and self._rewind():
            # A pooled connection the server had already closed: retry at once.
            self._drop_upstream()
            self.attempt -= 1  # not a real attempt: the request never left
            self.send(self.key, self.connect_timeout, self.backend_limits)
            return
        self._attempt_failed(status, reason, proven_unsent)

    # tunnel --------------------------------------------------------------------------------

    def tunnel_to_client(self, data: bytes) -> None:
        self.client.write(data)

    def tunnel_closed(self) -> None:
        self.upstream = None
        self.client.close_after_write()
        self._close(True)

    # ending --------------------------------------------------------------------------------

    def _drop_upstream(self, abort: bool = False) -> None:
        conn = self.upstream
        if conn is not None:
            self.upstream = None
            if abort:
                conn.abort()
            else:
                conn.close()

    def _close(self, ok: bool) -> None:
        if self.finished:
            return
        self.finished = True
        self.deadline_at = 0.0
        if self.attempt_timer is not None:
            self.attempt_timer.cancel()
            self.attempt_timer = None
        self.target.done(self, self.status, ok)
        if self.framing != FRAMING_UPGRADE or not ok:
            self.client.exchange_finished(self, self.closing)
