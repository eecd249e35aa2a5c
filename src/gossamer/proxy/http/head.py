"""Parsed message heads and their re-serialisation for the next hop.

Header names are stored lower-cased (HTTP field names are case-insensitive and routing
matches on lower-case names); values are passed through untouched.
"""

from __future__ import annotations

import os
import random

Headers = list[tuple[bytes, bytes]]

# Hop-by-hop headers never forwarded as-is (RFC 9110 7.6.1). Transfer-Encoding and
# Content-Length are re-framed by the writer; Upgrade is kept only when upgrading.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)
# Fields that must never appear in trailers (framing, routing, auth).
TRAILER_FORBIDDEN = HOP_BY_HOP | {b"content-length", b"host", b"content-type", b"authorization"}


class RequestHead:
    """One request's head; filled by the reader, read by routing and the writer."""

    __slots__ = (
        "chunked",
        "connection_tokens",
        "content_length",
        "expect_continue",
        "headers",
        "host",
        "keep_alive",
        "method",
        "request_id",
        "target",
        "upgrade",
        "version",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.version = b"1.1"
        self.headers: Headers = []
        self.host = b""
        self.keep_alive = True
        self.chunked = False
        self.content_length: int | None = None
        self.upgrade = b""
        self.expect_continue = False
        self.connection_tokens: frozenset[bytes] = frozenset()
        self.request_id = b""

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class ResponseHead:
    __slots__ = (
        "chunked",
        "connection_tokens",
        "content_length",
        "headers",
        "keep_alive",
        "reason",
        "status",
        "upgrade",
    )

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: Headers = []
        self.keep_alive = True
        self.chunked = False
        self.content_length: int | None = None
        self.connection_tokens: frozenset[bytes] = frozenset()
        self.upgrade = b""


def connection_tokens(value: bytes) -> frozenset[bytes]:
    tokens = _COMMON_TOKENS.get(value)
    if tokens is None:
        tokens = frozenset(t.strip().lower() for t in value.split(b",") if t.strip())
    return tokens


# Nearly every message says one of these: skip splitting them (a third of a microsecond).
_COMMON_TOKENS = {
    value: frozenset({value.lower()})
    for value in (b"keep-alive", b"Keep-Alive", b"close", b"Close", b"upgrade", b"Upgrade")
}

# Request ids must be unique, not secret: a generator seeded from the OS once replaces a
# getrandom() system call per request.
_request_ids = random.Random(os.urandom(32))


def new_request_id() -> bytes:
    return b"%032x" % _request_ids.getrandbits(128)


def _forwardable(name: bytes, tokens: frozenset[bytes]) -> bool:
    return name not in HOP_BY_HOP and name not in tokens


def serialize_request(
    head: RequestHead, target: bytes, client_ip: bytes, proto: bytes, body_chunked: bool
) -> bytes:
    """The request head for the upstream: HTTP/1.1, hop-by-hop removed, forwarding headers added."""
    tokens = head.connection_tokens
    parts = [head.method, b" ", target, b" HTTP/1.1\r\n"]
    xff_done = xfp_seen = rid_seen = False
    for name, value in head.headers:
        if name in HOP_BY_HOP or name in tokens:
            continue
        if name == b"x-forwarded-for":
            if xff_done:
                continue  # folded into the first occurrence below
            value = b", ".join([v for n, v in head.headers if n == name] + [client_ip])
            xff_done = True
        elif name == b"x-forwarded-proto":
            xfp_seen = True
        elif name == b"x-request-id":
            rid_seen = True
        parts += (name, b": ", value, b"\r\n")
    if not xff_done:
        parts += (b"x-forwarded-for: ", client_ip, b"\r\n")
    if not xfp_seen:
        parts += (b"x-forwarded-proto: ", proto, b"\r\n")
    if not rid_seen:
        parts += (b"x-request-id: ", head.request_id, b"\r\n")
    if head.upgrade:
        parts += (b"connection: upgrade\r\nupgrade: ", head.upgrade, b"\r\n")
    elif body_chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def serialize_response(head: ResponseHead, framing: int, close: bool, extra: bytes = b"") -> bytes:
    """The response head for the client. `framing` is one of the FRAMING_* constants."""
    tokens = head.connection_tokens
    # HEAD and 304 responses keep the length of the body they describe.
    keep_length = framing == FRAMING_NONE and head.status >= 200 and head.status != 204
    parts = [b"HTTP/1.1 %d " % head.status, head.reason, b"\r\n"]
    for name, value in head.headers:
        if name in HOP_BY_HOP or name in tokens:
            continue
        if name == b"content-length" and framing != FRAMING_LENGTH and not keep_length:
            continue
        parts += (name, b": ", value, b"\r\n")
    if framing == FRAMING_CHUNKED:
        parts.append(b"transfer-encoding: chunked\r\n")
    elif framing == FRAMING_UPGRADE:
        parts += (b"connection: upgrade\r\nupgrade: ", head.upgrade, b"\r\n")
    if close and framing != FRAMING_UPGRADE:
        parts.append(b"connection: close\r\n")
    parts.append(extra)
    parts.append(b"\r\n")
    return b"".join(parts)


FRAMING_NONE = 0  # no body (HEAD, 1xx, 204, 304)
FRAMING_LENGTH = 1  # content-length passes through
FRAMING_CHUNKED = 2  # re-framed as chunked
FRAMING_CLOSE = 3  # body ends when the connection closes (HTTP/1.0 clients)
FRAMING_UPGRADE = 4  # 101: raw tunnel follows


def response_framing(request: RequestHead, response: ResponseHead) -> int:
    """How the response body is delimited towards the client (RFC 9112 6.3)."""
    status = response.status
    if status == 101 and request.upgrade:
        return FRAMING_UPGRADE
    if request.method == b"HEAD" or status in (204, 304) or status < 200:
        return FRAMING_NONE
    if response.content_length is not None and not response.chunked:
        return FRAMING_LENGTH
    if request.version == b"1.1":
        return FRAMING_CHUNKED
    return FRAMING_CLOSE  # an HTTP/1.0 client cannot read chunked


def serialize_trailers(trailers: Headers) -> bytes:
    """The last chunk with forwardable trailer fields."""
    parts = [b"0\r\n"]
    for name, value in trailers:
        if name not in TRAILER_FORBIDDEN:
            parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> list[bytes]:
    return [b"%x\r\n" % len(data), data, b"\r\n"]


LAST_CHUNK = b"0\r\n\r\n"
