"""The readers without sockets: events, strictness checks, HEAD handling."""

from __future__ import annotations

import pytest

from gossamer.proxy.http.head import Headers, RequestHead, ResponseHead
from gossamer.proxy.http.reader import FramingError, RequestReader, ResponseReader


class Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []

    def on_request_head(self, head: RequestHead) -> None:
        self.log.append(("head", head))

    def on_request_body(self, data: bytes) -> None:
        self.log.append(("body", data))

    def on_request_end(self, trailers: Headers | None) -> None:
        self.log.append(("end", trailers))

    def on_response_head(self, head: ResponseHead) -> None:
        self.log.append(("head", head))

    def on_response_body(self, data: bytes) -> None:
        self.log.append(("body", data))

    def on_response_end(self, trailers: Headers | None) -> None:
        self.log.append(("end", trailers))


def test_request_head_fields_and_trailers() -> None:
    events = Events()
    reader = RequestReader(events)
    reader.feed(
        b"POST /p?q=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nConnection: keep-alive, X-A\r\n"
        b"Expect: 100-continue\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    )
    kinds = [k for k, _ in events.log]
    assert kinds == ["head", "body", "end"]
    head = events.log[0][1]
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.version, head.host) == (b"POST", b"/p?q=1", b"1.1", b"a")
    assert head.chunked and head.expect_continue and head.keep_alive
    assert head.connection_tokens == {b"keep-alive", b"x-a"}
    assert events.log[2][1] == [(b"x-t", b"1")]


def test_request_split_across_feeds() -> None:
    events = Events()
    reader = RequestReader(events)
    raw = b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
    for i in range(len(raw)):
        reader.feed(raw[i : i + 1])
    assert b"".join(d for k, d in events.log if k == "body") == b"body"  # type: ignore[misc]
    assert events.log[-1] == ("end", None)


@pytest.mark.parametrize(
    "raw",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET x HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
)
def test_checks_httptools_lacks(raw: bytes) -> None:
    reader = RequestReader(Events())
    with pytest.raises(FramingError) as caught:
        reader.feed(raw)
    assert caught.value.status in (400, 405)


def test_header_limits_are_parameters() -> None:
    reader = RequestReader(Events(), max_header_bytes=100, max_headers=2)
    with pytest.raises(FramingError) as caught:
        reader.feed(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n")
    assert (caught.value.status, caught.value.reason) == (431, "headers_too_large")
    reader = RequestReader(Events(), max_header_bytes=100, max_headers=20)
    with pytest.raises(FramingError):
        reader.feed(b"GET / HTTP/1.1\r\nHost: a\r\nA: " + b"x" * 200)


def test_upgrade_returns_tunnel_offset() -> None:
    reader = RequestReader(Events())
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    assert reader.feed(raw + b"RAW") == len(raw)


def test_head_response_ends_at_headers_and_parser_is_reusable() -> None:
    events = Events()
    reader = ResponseReader(events)
    reader.expect_no_body(True)
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    assert [k for k, _ in events.log] == ["head", "end"]
    reader.expect_no_body(False)
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert [k for k, _ in events.log] == ["head", "end", "head", "body", "end"]


def test_eof_delimited_response_completes_at_eof() -> None:
    events = Events()
    reader = ResponseReader(events)
    reader.feed(b"HTTP/1.1 200 OK\r\n\r\nabc")
    assert reader.finish_at_eof()
    assert events.log[-1] == ("end", None)


def test_garbage_response_is_502() -> None:
    reader = ResponseReader(Events())
    with pytest.raises(FramingError) as caught:
        reader.feed(b"NOT HTTP\r\n\r\n")
    assert (caught.value.status, caught.value.reason) == (502, "bad_upstream_response")
