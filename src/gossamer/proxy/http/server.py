"""The client-facing side of the proxy: one protocol instance per accepted connection.

It parses requests, runs them one at a time through `Exchange`s (pipelined requests wait
in a backlog, so responses keep their order), enforces the header timeout and idle
timeout with a single lazily re-armed timer, and supports graceful drain.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from gossamer.proxy.http import errors
from gossamer.proxy.http.exchange import Exchange
from gossamer.proxy.http.head import Headers, RequestHead, new_request_id
from gossamer.proxy.http.reader import FramingError, RequestReader

if TYPE_CHECKING:
    from gossamer.proxy.http.listener import Listener

LINGER_SECONDS = 2.0
_PAUSE_BACKLOG = 1
_PAUSE_BUFFER = 2
_PAUSE_UPSTREAM = 4


class ClientConnection(asyncio.Protocol):
    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        config = listener.config
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.proto = config.proto
        self.reader = RequestReader(self, config.max_header_bytes, config.max_headers)
        self.transport: asyncio.Transport | None = None
        self.peer_ip = b""
        self.exchange: Exchange | None = None
        self.backlog: list[tuple[int, Any]] = []
        self.paused = 0
        self.write_paused = False
        self.draining = False
        self.closed = False
        self.tunnel = False
        self.deadline = 0.0  # 0: no deadline
        self.deadline_is_header = False
        self.timer: asyncio.TimerHandle | None = None
        self.lingering = False
        self.eof = False
        self.broken = False
        self.corked = 0
        self.out: list[bytes] = []
        self.identity: Any = None  # set by TLS listeners from the peer certificate

    # asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        if self.listener.identify is not None:
            self.identity = self.listener.identify(transport)
        peer = transport.get_extra_info("peername")
        self.peer_ip = str(peer[0]).encode() if peer else b"unknown"
        self.listener.connections.add(self)
        self.listener.stats.connection_opened(self.listener.direction)
        self._set_deadline(self.config.idle_timeout, header=False)

    def data_received(self, data: bytes) -> None:
        if self.lingering or self.broken:
            return  # discarded: the framing is lost
        if self.tunnel:
            if self.exchange is not None:
                self.exchange.client_tunnel_data(data)
            return
        if not self.reader.in_message and self.exchange is None and not self.backlog:
            self._set_deadline(self.config.header_timeout, header=True)
        try:
            offset = self.reader.feed(data)
        except FramingError as exc:
            self._reject(exc.status, exc.reason)
            return
        if offset is not None:
            self.tunnel = True
            if offset < len(data) and self.exchange is not None:
                self.exchange.client_tunnel_data(data[offset:])

    def eof_received(self) -> bool | None:
        if self.lingering:
            return None
        self.eof = True
        exchange = self.exchange
        if exchange is not None and not self.tunnel and exchange.request_done:
            # Half-close after a whole request: deliver its response, then close.
            self.draining = True
            return True
        if exchange is not None:
            exchange.client_lost()  # a request that can never complete
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.exchange is not None:
            self.exchange.client_lost()
        self.listener.forget(self)
        self.listener.stats.connection_closed(self.listener.direction)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.exchange is not None:
            self.exchange.client_write_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.exchange is not None:
            self.exchange.client_write_paused(False)

    # RequestSink -----------------------------------------------------------------------------

    def on_request_head(self, head: RequestHead) -> None:
        if self.exchange is not None or self.backlog:
            self.backlog.append((0, head))
            self._pause(_PAUSE_BACKLOG, True)
            return
        self._begin(head)

    def on_request_body(self, data: bytes) -> None:
        if self.backlog:
            self.backlog.append((1, data))
        elif self.exchange is not None:
            self.exchange.request_body(data)

    def on_request_end(self, trailers: Headers | None) -> None:
        if self.backlog:
            self.backlog.append((2, trailers))
        elif self.exchange is not None:
            self.exchange.request_end(trailers)

    # exchanges -------------------------------------------------------------------------------

    def _begin(self, head: RequestHead) -> None:
        self.deadline = 0.0
        if not head.request_id:
            head.request_id = head.header(b"x-request-id") or new_request_id()
        listener = self.listener
        exchange = Exchange(self, head, listener.target, listener.pool, self.loop.time())
        self.exchange = exchange
        if self.draining:
            exchange.closing = True
        tracer = listener.stats.tracer
        if tracer is not None:
            tracer.start(exchange, listener.direction)  # before an attempt copies the headers
        listener.target.begin(exchange)

    def exchange_finished(self, exchange: Exchange, close: bool) -> None:
        self.listener.stats.exchange_done(self, exchange)
        if self.exchange is exchange:
            self.exchange = None
        if self.closed:
            return  # the client is gone: pipelined leftovers go nowhere
        if close or (self.draining and not self.backlog):
            self.close_after_write()
            return
        self._pause(_PAUSE_BUFFER | _PAUSE_UPSTREAM, False)
        while self.backlog and self.exchange is None and not self.closed:
            kind, item = self.backlog.pop(0)
            if kind == 0:
                self._begin(item)
            elif kind == 3:
                self._reject(*item)
                return
        while self.backlog and self.exchange is not None:
            kind, item = self.backlog[0]
            if kind == 0:
                break
            self.backlog.pop(0)
            if kind == 1:
                self.exchange.request_body(item)
            elif kind == 2:
                self.exchange.request_end(item)
            else:
                self.exchange.fail(*item)  # this request's body was malformed
                return
        if self.eof and self.exchange is not None and not self.exchange.request_done:
            self.exchange.client_lost()  # its body was cut by the client's EOF
            self.close_after_write()
            return
        if not self.backlog:
            self._pause(_PAUSE_BACKLOG, False)
            if self.exchange is None:
                if self.draining:
                    self.close_after_write()
                else:
                    self._set_deadline(self.config.idle_timeout, header=False)

    def _reject(self, status: int, reason: str) -> None:
        """A framing error: answer after any earlier in-flight response, then close."""
        self.broken = True  # the parser is in an error state: feed it nothing more
        exchange = self.exchange
        if exchange is not None and not self.backlog and not exchange.request_done:
            exchange.fail(status, reason)  # its own body is malformed (aborts if answered)
            return
        if exchange is not None or self.backlog:
            self.backlog.append((3, (status, reason)))
            self._pause(_PAUSE_BACKLOG, True)
            return
        self.listener.stats.request_done(self.listener.direction, status, reason)
        self.write(errors.error_response(status, reason, close=True))
        self._linger()

    def _linger(self) -> None:
        """Half-close and drain what the client is still sending for a moment, so the
        kernel does not answer its unread bytes with a reset that destroys our response."""
        transport = self.transport
        if transport is None or self.closed:
            return
        if not transport.can_write_eof():
            self.close_after_write()
            return
        self._flush()
        self.lingering = True
        self.paused = 0
        transport.resume_reading()
        transport.write_eof()
        self._set_deadline(LINGER_SECONDS, header=False)

    def start_tunnel(self) -> None:
        self.tunnel = True
        self.deadline = 0.0

    # flow control ----------------------------------------------------------------------------

    def _pause(self, reason: int, paused: bool) -> None:
        before = self.paused
        if not before and not paused:
            return  # the common case after every exchange: nothing to resume
        self.paused = before | reason if paused else before & ~reason
        transport = self.transport
        if transport is None or self.closed:
            return
        if before and not self.paused:
            transport.resume_reading()
        elif not before and self.paused:
            transport.pause_reading()

    def pause_for_buffer(self, paused: bool) -> None:
        self._pause(_PAUSE_BUFFER, paused)

    def pause_for_upstream(self, paused: bool) -> None:
        self._pause(_PAUSE_UPSTREAM, paused)

    # writing and closing ---------------------------------------------------------------------

    def cork(self) -> None:
        """Collect writes until `uncork`: a response head, body and end that arrive in
        one upstream read leave in one send, not three."""
        self.corked += 1

    def uncork(self) -> None:
        self.corked -= 1
        if not self.corked and self.out:
            out, self.out = self.out, []
            if self.transport is not None and not self.closed:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def write(self, data: bytes) -> None:
        if self.corked:
            self.out.append(data)
        elif self.transport is not None and not self.closed:
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if self.corked:
            self.out.extend(parts)
        elif self.transport is not None and not self.closed:
            self.transport.writelines(parts)

    def _flush(self) -> None:
        if self.out:
            out, self.out = self.out, []
            if self.transport is not None and not self.closed:
                self.transport.writelines(out)

    def close_after_write(self) -> None:
        if self.transport is not None and not self.closed:
            self._flush()
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def start_drain(self) -> None:
        self.draining = True
        if self.exchange is None and not self.reader.in_message and not self.backlog:
            self.close_after_write()

    # timers ----------------------------------------------------------------------------------

    def _set_deadline(self, seconds: float, header: bool) -> None:
        self.deadline = self.loop.time() + seconds
        self.deadline_is_header = header
        timer = self.timer
        if timer is not None and timer.when() > self.deadline:
            timer.cancel()
            timer = None
        if timer is None:
            self.timer = self.loop.call_at(self.deadline, self._on_timer)

    def arm(self, when: float) -> None:
        """Make sure the timer fires by `when` (an exchange's deadline); later is re-armed
        when it fires, so a connection's requests rarely create or cancel a timer."""
        timer = self.timer
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self.timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.closed:
            return
        now = self.loop.time()
        exchange = self.exchange
        if exchange is not None and exchange.deadline_at:
            if now >= exchange.deadline_at:
                exchange.deadline_passed()  # may end it (arming the idle deadline) or re-arm
            exchange = self.exchange
            if exchange is not None and exchange.deadline_at and not self.closed:
                self.arm(exchange.deadline_at)
            return
        if not self.deadline:
            return
        if now < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._on_timer)
            return
        if self.lingering:
            self.abort()
            return
        if self.exchange is not None or self.backlog:
            return  # the exchange has its own deadline
        if self.reader.in_message:
            self.listener.stats.request_done(self.listener.direction, 408, errors.REQUEST_TIMEOUT)
            self.write(errors.error_response(408, errors.REQUEST_TIMEOUT, close=True))
            self._linger()
            return
        self.close_after_write()
