"""A small HTTP(S) GET for JWKS documents (stdlib asyncio + httptools, size-capped)."""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import httptools

MAX_BODY = 256 * 1024
TIMEOUT = 5.0


class _Response:
    def __init__(self) -> None:
        self.body = bytearray()
        self.done = False

    def on_body(self, data: bytes) -> None:
        self.body += data
        if len(self.body) > MAX_BODY:
            raise ValueError("JWKS response too large")

    def on_message_complete(self) -> None:
        self.done = True


async def fetch(url: str, ssl_context: ssl.SSLContext | None = None) -> bytes:
    """The body of a 200 answer to GET `url`; OSError or ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    context = (ssl_context or ssl.create_default_context()) if tls else None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
            try:
                writer.write(
                    f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
                    f"Accept: application/json\r\n\r\n".encode("latin-1")
                )
                resp = _Response()
                parser = httptools.HttpResponseParser(resp)
                while not resp.done:
                    data = await reader.read(65536)
                    if not data:
                        break
                    parser.feed_data(data)
                status = parser.get_status_code()
            finally:
                writer.close()
    except TimeoutError:
        raise OSError(f"GET {url}: timed out") from None
    except httptools.HttpParserError as exc:
        raise ValueError(f"GET {url}: bad response: {exc}") from None
    if status != 200:
        raise ValueError(f"GET {url}: status {status}")
    return bytes(resp.body)
