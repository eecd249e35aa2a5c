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

import httptools

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100

# A handler answers (status, content type, body).
Reply = tuple[int, str, bytes]
Handler = Callable[[], Reply]

_REASONS = {
    200: "OK",
    400: "Bad Request",
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
    def __init__(self, routes: dict[str, Handler], conns: set[_AdminProtocol]) -> None:
        self.routes = routes
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

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers += 1
        if self.headers > MAX_HEADERS:
            raise _Reject(431, "too many headers")
        self._count(len(name) + len(value))

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
                path = httptools.parse_url(self.url).path.decode("latin-1")
            except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
                raise _Reject(400, "bad request target") from None
            handler = self.routes.get(path)
            reply = handler() if handler else text_reply(404, f"no such path; try {self._paths()}")
        self.transport.write(encode_response(reply, method == b"HEAD", not keep_alive))
        if not keep_alive:
            self.done = True
            self.transport.close()

    def _paths(self) -> str:
        return ", ".join(sorted(self.routes))

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

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self._server: asyncio.Server | None = None
        self._conns: set[_AdminProtocol] = set()

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _AdminProtocol(self.routes, self._conns), host, port
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
