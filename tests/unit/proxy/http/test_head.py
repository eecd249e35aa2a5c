"""Re-serialisation of heads for the next hop."""

from __future__ import annotations

from gossamer.proxy.http.head import (
    FRAMING_CHUNKED,
    FRAMING_LENGTH,
    FRAMING_NONE,
    RequestHead,
    ResponseHead,
    serialize_request,
    serialize_response,
    serialize_trailers,
)


def test_request_drops_hop_by_hop_and_merges_forwarded_for() -> None:
    head = RequestHead()
    head.method, head.target, head.request_id = b"GET", b"/", b"id1"
    head.headers = [
        (b"host", b"a"),
        (b"x-forwarded-for", b"1.1.1.1"),
        (b"connection", b"x-secret"),
        (b"x-secret", b"1"),
        (b"te", b"trailers"),
        (b"x-forwarded-for", b"2.2.2.2"),
        (b"transfer-encoding", b"chunked"),
    ]
    head.connection_tokens = frozenset({b"x-secret"})
    assert serialize_request(head, b"/", b"9.9.9.9", b"http", body_chunked=True) == (
        b"GET / HTTP/1.1\r\nhost: a\r\nx-forwarded-for: 1.1.1.1, 2.2.2.2, 9.9.9.9\r\n"
        b"x-forwarded-proto: http\r\nx-request-id: id1\r\ntransfer-encoding: chunked\r\n\r\n"
    )


def test_response_framing_rewrites_length_and_close() -> None:
    head = ResponseHead()
    head.status, head.reason = 200, b"OK"
    head.headers = [(b"content-length", b"5"), (b"keep-alive", b"timeout=1"), (b"x", b"y")]
    assert serialize_response(head, FRAMING_LENGTH, close=False) == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx: y\r\n\r\n"
    )
    assert serialize_response(head, FRAMING_CHUNKED, close=True) == (
        b"HTTP/1.1 200 OK\r\nx: y\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    # a HEAD response keeps the length of the body it describes
    assert serialize_response(head, FRAMING_NONE, close=False).startswith(
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n"
    )


def test_trailers_drop_forbidden_fields() -> None:
    assert serialize_trailers([(b"x-sum", b"1"), (b"content-length", b"9")]) == (
        b"0\r\nx-sum: 1\r\n\r\n"
    )
