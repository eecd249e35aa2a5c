"""A minimal HTTP/1.1 client for the simulated proxies: a thousand of them must cost the bench
process little, so that the fan-out numbers measure the control plane, not the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit


def host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def _body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> bytes:
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return b"".join([chunk async for chunk in _chunks(reader)])
    return await reader.readexactly(int(headers.get(b"content-length", b"0")))


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size = int((await reader.readline()).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readline()  # the empty trailer
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


def _header_lines(headers: dict[str, str]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items())


async def stream_lines(
    base_url: str, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[bytes]:
    """GET `path` and yield the response body line by line (chunked or not); raises on non-200."""
    host, port = host_port(base_url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        extra = _header_lines(headers or {})
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode())
        status, response_headers = await _read_head(reader)
        if status != 200:
            body = await _body(reader, response_headers)
            raise ConnectionError(f"GET {path} -> {status}: {body[:300]!r}")
        if response_headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            while line := await reader.readline():
                yield line
            return
        pending = b""
        async for chunk in _chunks(reader):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class KeepAliveClient:
    """One persistent connection for small JSON POSTs (a proxy's ACKs)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host_port(base_url)
        self._extra = _header_lines(headers or {})
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):  # the server may have closed an idle connection: reopen once
            if self._conn is None:
                self._conn = await asyncio.open_connection(self.host, self.port)
            reader, writer = self._conn
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self._extra}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            try:
                status, headers = await _read_head(reader)
                data = await _body(reader, headers)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if headers.get(b"connection", b"").lower() == b"close":
                self.close()
            return status, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None
