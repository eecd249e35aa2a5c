"""The sidecar's small HTTP listeners: stats (`/metrics`, `/ready`, `/live`) on the instance
address, and admin (`/config`) on loopback only.

Strict and tiny: GET/HEAD only, small requests, one response per request, keep-alive.
Anything malformed gets a 400 and the connection is closed; nothing here can crash the
process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qsl

import httptools

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100

# A handler answers (status, content type, body).
Reply = tuple[int, str, bytes]
Handler = Callable[[], Reply]
MAX_STREAM_BUFFER = 256 * 1024  # a streaming reader this far behind loses lines


class Stream:
    """A chunked response a stream handler keeps writing to until the client leaves."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.closed = False
        self.on_close: Callable[[], None] | None = None

    def write(self, data: bytes) -> bool:
        """Send one chunk; False (nothing sent) when closed or the reader is too slow."""
        if self.closed or self.transport.get_write_buffer_size() > MAX_STREAM_BUFFER:
            return False
        self.transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        return True

    def lost(self) -> None:
        self.closed = True
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()


# (query parameters, the request's authorization header, the stream) -> an error Reply, or
# None after subscribing the stream (e.g. GET /tap).
StreamHandler = Callable[[dict[str, str], bytes | None, Stream], Reply | None]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def json_reply(status: int, payload: Any) -> Reply:
    return status, "application/json", json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def text_reply(status: int, text: str) -> Reply:
    return status, "text/plain; charset=utf-8", text.encode() + b"\n"


def encode_response(reply: Reply, head_only: bool, close: bool) -> bytes:
    status, ctype, body = reply
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        f"Cache-Control: no-store\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    return head.encode("latin-1") + (b"" if head_only else body)


class _AdminProtocol(asyncio.Protocol):
    def __init__(
        self,
        routes: dict[str, Handler],
        conns: set[_AdminProtocol],
        streams: dict[str, StreamHandler] | None = None,
    ) -> None:
        self.routes = routes
        self.streams = streams or {}
        self.stream: Stream | None = None
        self.authorization: bytes | None = None
        self.conns = conns
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.head_bytes = 0
        self.headers = 0
        self.body_bytes = 0
        self.done = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)
        self.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conns.discard(self)
        if self.stream is not None:
            self.stream.lost()

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "upgrade not supported")
        except httptools.HttpParserCallbackError as exc:
            # httptools wraps what our callbacks raise; the original is the context.
            rej = exc.__context__
            if isinstance(rej, _Reject):
                self._fail(rej.status, rej.message)
            else:
                self._fail(500, f"internal error: {type(rej).__name__}")
        except httptools.HttpParserError:
            self._fail(400, "malformed request")
        except Exception as exc:  # never let a request take the listener down
            self._fail(500, f"internal error: {type(exc).__name__}")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.head_bytes = 0
        self.headers = 0
        self.body_bytes = 0
        self.authorization = None

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers += 1
        if self.headers > MAX_HEADERS:
            raise _Reject(431, "too many headers")
        self._count(len(name) + len(value))
        if name.lower() == b"authorization":
            self.authorization = value

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > 0:
            raise _Reject(413, "these endpoints take no body")

    def on_message_complete(self) -> None:
        assert self.transport is not None
        method = self.parser.get_method()
        keep_alive = self.parser.should_keep_alive()
        if method not in (b"GET", b"HEAD"):
            reply = text_reply(405, "only GET and HEAD")
        else:
            try:
                url = httptools.parse_url(self.url)
                path = url.path.decode("latin-1")
            except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
                raise _Reject(400, "bad request target") from None
            if path in self.streams and method == b"GET":
                self._start_stream(self.streams[path], url.query or b"")
                return
            handler = self.routes.get(path)
            reply = handler() if handler else text_reply(404, f"no such path; try {self._paths()}")
        self.transport.write(encode_response(reply, method == b"HEAD", not keep_alive))
        if not keep_alive:
            self.done = True
            self.transport.close()

    def _start_stream(self, handler: StreamHandler, raw_query: bytes) -> None:
        assert self.transport is not None
        try:
            pairs = parse_qsl(
                raw_query.decode("latin-1"), keep_blank_values=True, max_num_fields=20
            )
        except ValueError:
            raise _Reject(400, "bad query string") from None
        stream = Stream(self.transport)
        reply = handler(dict(pairs), self.authorization, stream)
        if reply is not None:
            self.transport.write(encode_response(reply, False, True))
            self.done = True
            self.transport.close()
            return
        self.done = True  # the rest of the connection is this response
        self.stream = stream
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            b"Transfer-Encoding: chunked\r\nCache-Control: no-store\r\n\r\n"
        )

    def _paths(self) -> str:
        return ", ".join(sorted([*self.routes, *self.streams]))

    def _count(self, n: int) -> None:
        self.head_bytes += n
        if self.head_bytes > MAX_HEAD_BYTES:
            raise _Reject(431, "request head too large")

    def _fail(self, status: int, message: str) -> None:
        self.done = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_response(text_reply(status, message), False, True))
            self.transport.close()


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AdminServer:
    """One small listener serving fixed paths."""

    def __init__(
        self, routes: dict[str, Handler], streams: dict[str, StreamHandler] | None = None
    ) -> None:
        self.routes = routes
        self.streams = streams
        self._server: asyncio.Server | None = None
        self._conns: set[_AdminProtocol] = set()

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _AdminProtocol(self.routes, self._conns, self.streams), host, port
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.close()
        await self._server.wait_closed()
