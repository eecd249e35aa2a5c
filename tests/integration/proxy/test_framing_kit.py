"""Helpers for data-path tests: scripted raw upstreams, raw clients, tiny HTTP readers.

(A plain module beside the tests, imported by name like tests/integration/control/controlkit.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Upstream:
    """A raw TCP server running `handler` per connection; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.accepted = 0
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connected = asyncio.Event()

    async def start(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.connected.set()
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request with a content-length body (or none)."""
    head = await read_head(reader)
    return head + await reader.readexactly(content_length(head))


def ok_response(body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def keepalive_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request on the connection with 200 and the request path as body."""
    while True:
        request = await read_request(reader)
        path = request.split(b" ", 2)[1]
        writer.write(ok_response(path))
        await writer.drain()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_exactly(self, n: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(n), 10)

    async def read_until_close(self) -> bytes:
        return await asyncio.wait_for(self.reader.read(-1), 10)

    async def read_response(self) -> bytes:
        head = await asyncio.wait_for(read_head(self.reader), 10)
        return head + await self.read_exactly(content_length(head))

    def close(self) -> None:
        self.writer.close()


async def connect(port: int) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return Client(reader, writer)
