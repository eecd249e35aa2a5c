"""Strict HTTP/1.1 message readers on httptools.

httptools (llhttp) already rejects most smuggling vectors (CL with TE, duplicate or empty
Content-Length, bare CR, NUL, obs-fold). These readers add what it lacks: a Host check, a
Transfer-Encoding that must be exactly `chunked`, header count and size limits, and the
HEAD/no-body rule for responses (httptools cannot know the request method).
"""

from __future__ import annotations

from typing import Protocol

import httptools

from gossamer.proxy.http import errors
from gossamer.proxy.http.head import Headers, RequestHead, ResponseHead, connection_tokens

MAX_HEADER_BYTES = 60 * 1024
MAX_HEADERS = 100


class FramingError(Exception):
    """The peer's bytes are not acceptable HTTP/1.1; the connection must be closed."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.status = status
        self.reason = reason


class RequestSink(Protocol):
    def on_request_head(self, head: RequestHead) -> None: ...
    def on_request_body(self, data: bytes) -> None: ...
    def on_request_end(self, trailers: Headers | None) -> None: ...


class ResponseSink(Protocol):
    def on_response_head(self, head: ResponseHead) -> None: ...
    def on_response_body(self, data: bytes) -> None: ...
    def on_response_end(self, trailers: Headers | None) -> None: ...


def _bad(detail: str) -> FramingError:
    return FramingError(400, errors.BAD_REQUEST, detail)


def _unwrap(exc: Exception) -> Exception:
    inner = exc.__context__
    return inner if isinstance(inner, FramingError) else exc


class RequestReader:
    """Feeds bytes to httptools and calls the sink once per head, body piece and end."""

    __slots__ = (
        "_feed_body_bytes",
        "_head",
        "_head_bytes",
        "_header_count",
        "_headers_done",
        "_on_body",
        "_on_end",
        "_on_head",
        "_parser",
        "_raw_head_bytes",
        "_trailers",
        "in_message",
        "max_header_bytes",
        "max_headers",
    )

    def __init__(
        self,
        sink: RequestSink,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_headers: int = MAX_HEADERS,
    ) -> None:
        self._on_head = sink.on_request_head
        self._on_body = sink.on_request_body
        self._on_end = sink.on_request_end
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self._parser = httptools.HttpRequestParser(self)
        self._head = RequestHead()
        self._head_bytes = 0
        self._raw_head_bytes = 0
        self._feed_body_bytes = 0
        self._header_count = 0
        self._headers_done = False
        self._trailers: Headers | None = None
        self.in_message = False  # a request has begun and not yet ended

    @property
    def in_head(self) -> bool:
        return self.in_message and not self._headers_done

    def feed(self, data: bytes) -> int | None:
        """Parse `data`; returns the offset where an upgraded (tunnelled) stream starts."""
        self._feed_body_bytes = 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            return int(upgrade.args[0])
        except httptools.HttpParserCallbackError as exc:
            raise _unwrap(exc) from None
        except httptools.HttpParserError as exc:
            raise _bad(str(exc)) from None
        if self.in_message and not self._headers_done:
            # Bound what httptools buffers for an unfinished head (body bytes excluded;
            # earlier small heads in the same chunk may be counted too: a safe overestimate).
            self._raw_head_bytes += len(data) - self._feed_body_bytes
            if self._raw_head_bytes > self.max_header_bytes:
                raise FramingError(431, errors.HEADERS_TOO_LARGE)
        return None

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.in_message = True
        self._head = RequestHead()
        self._head_bytes = 0
        self._raw_head_bytes = 0
        self._header_count = 0
        self._headers_done = False
        self._trailers = None

    def on_url(self, url: bytes) -> None:
        self._head.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if self._headers_done:
            if self._trailers is None:
                self._trailers = []
            self._trailers.append((name, value))
            return
        self._header_count += 1
        self._head_bytes += len(name) + len(value) + 4
        if self._header_count > self.max_headers or self._head_bytes > self.max_header_bytes:
            raise FramingError(431, errors.HEADERS_TOO_LARGE)
        head = self._head
        head.headers.append((name, value))
        if name == b"host":
            if head.host:
                raise _bad("duplicate Host")
            head.host = value
        elif name == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                raise _bad("Transfer-Encoding other than chunked")
            head.chunked = True
        elif name == b"content-length":
            head.content_length = int(value)  # llhttp has checked the digits
        elif name == b"connection":
            head.connection_tokens = head.connection_tokens | connection_tokens(value)
        elif name == b"upgrade":
            head.upgrade = value
        elif name == b"expect":
            head.expect_continue = value.strip().lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        self._headers_done = True
        head = self._head
        parser = self._parser
        head.method = parser.get_method()
        head.version = parser.get_http_version().encode()
        head.keep_alive = parser.should_keep_alive()
        if self._head_bytes + len(head.target) > self.max_header_bytes:
            raise FramingError(431, errors.HEADERS_TOO_LARGE)
        if head.version == b"1.1" and not head.host:
            raise _bad("missing Host")
        target = head.target
        if not (target.startswith(b"/") or target.startswith(b"http://") or target == b"*"):
            raise _bad("request target form")
        if head.method == b"CONNECT":
            raise FramingError(405, errors.BAD_REQUEST, "CONNECT is not proxied")
        if not parser.should_upgrade():
            head.upgrade = b""
        self._on_head(head)

    def on_body(self, data: bytes) -> None:
        self._feed_body_bytes += len(data)
        self._on_body(data)

    def on_message_complete(self) -> None:
        self.in_message = False
        self._on_end(self._trailers)


class ResponseReader:
    """Reads responses from an upstream; `expect_no_body()` before a HEAD request's response."""

    __slots__ = (
        "_head",
        "_headers_done",
        "_no_body",
        "_on_body",
        "_on_end",
        "_on_head",
        "_parser",
        "_sink",
        "_skipping",
        "_trailers",
        "in_message",
    )

    def __init__(self, sink: ResponseSink) -> None:
        self._sink = sink
        self._on_head = sink.on_response_head
        self._on_body = sink.on_response_body
        self._on_end = sink.on_response_end
        self._parser = httptools.HttpResponseParser(self)
        self._head = ResponseHead()
        self._headers_done = False
        self._trailers: Headers | None = None
        self._no_body = False
        self._skipping = False  # after a HEAD response: the old parser's leftovers are ignored
        self.in_message = False

    def expect_no_body(self, no_body: bool) -> None:
        self._no_body = no_body

    def feed(self, data: bytes) -> int | None:
        """Parse `data`; returns the offset where a 101 tunnel starts."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            return int(upgrade.args[0])
        except httptools.HttpParserCallbackError as exc:
            raise _unwrap(exc) from None
        except httptools.HttpParserError as exc:
            raise FramingError(502, errors.BAD_UPSTREAM_RESPONSE, str(exc)) from None
        if self._skipping:
            # Fresh parser for the next response on this connection.
            self._skipping = False
            self._parser = httptools.HttpResponseParser(self)
        elif self.in_message and not self._headers_done and len(data) > MAX_HEADER_BYTES * 2:
            raise FramingError(502, errors.BAD_UPSTREAM_RESPONSE, "response head too large")
        return None

    def on_message_begin(self) -> None:
        if self._skipping:
            raise FramingError(502, errors.BAD_UPSTREAM_RESPONSE, "bytes after a HEAD response")
        self.in_message = True
        self._head = ResponseHead()
        self._headers_done = False
        self._trailers = None

    def on_status(self, reason: bytes) -> None:
        self._head.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if self._headers_done:
            if self._trailers is None:
                self._trailers = []
            self._trailers.append((name, value))
            return
        head = self._head
        if len(head.headers) >= 2 * MAX_HEADERS:
            raise FramingError(502, errors.BAD_UPSTREAM_RESPONSE, "too many response headers")
        head.headers.append((name, value))
        if name == b"transfer-encoding":
            head.chunked = True
        elif name == b"content-length":
            head.content_length = int(value)
        elif name == b"connection":
            head.connection_tokens = head.connection_tokens | connection_tokens(value)
        elif name == b"upgrade":
            head.upgrade = value

    def on_headers_complete(self) -> None:
        if self._skipping:
            return
        self._headers_done = True
        head = self._head
        parser = self._parser
        head.status = parser.get_status_code()
        head.keep_alive = parser.should_keep_alive()
        if head.status != 101:
            head.upgrade = b""
        self._on_head(head)
        if self._no_body and head.status >= 200:
            # A response to HEAD has no body whatever its headers say; httptools cannot
            # be told, so end the message here and swap the parser after this feed.
            self.in_message = False
            self._skipping = True
            self._on_end(None)

    def on_body(self, data: bytes) -> None:
        if self._skipping:
            raise FramingError(502, errors.BAD_UPSTREAM_RESPONSE, "body after a HEAD response")
        self._on_body(data)

    def on_message_complete(self) -> None:
        if self._skipping:
            return
        self.in_message = False
        self._on_end(self._trailers)

    def finish_at_eof(self) -> bool:
        """At EOF: True when the current response was EOF-delimited and is now complete."""
        head = self._head
        if not self.in_message or not self._headers_done:
            return False
        if head.chunked or head.content_length is not None:
            return False
        self.in_message = False
        self._on_end(None)
        return True
