"""Raw-socket tests of the HTTP/1.1 framing through the inbound listener (fixed target)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from test_framing_kit import Upstream, connect, keepalive_ok, ok_response, read_head, read_request

from gossamer.proxy.dataplane import DataPlane

# pytest-asyncio deprecates this override in favour of a loop-factory hook, which would
# apply to every test in the directory; the override keeps uvloop to these modules.
pytestmark = pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy"')


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """The sidecar runs on uvloop; so do these tests."""
    return uvloop.EventLoopPolicy()


RID = b"x-request-id: r1\r\n"
FWD = b"x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\n"


async def proxy_to(dataplane: DataPlane, upstream: Upstream) -> int:
    return await dataplane.start_inbound("127.0.0.1", 0, "127.0.0.1", upstream.port)


async def test_get_forwarded_with_forwarding_headers_and_hop_by_hop_removed(dataplane, upstreams):
    seen: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(reader, writer):
        seen.put_nowait(await read_request(reader))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\n"
            b"X-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-Keep: 1\r\n\r\nok"
        )
        await writer.drain()
        await reader.read()

    port = await proxy_to(dataplane, await upstreams(handler))
    client = await connect(port)
    await client.send(
        b"GET /a?b=1 HTTP/1.1\r\nHost: app\r\nConnection: X-Private\r\nX-Private: 1\r\n"
        b"Keep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
        b"X-Forwarded-For: 10.0.0.1\r\nUpgrade: h2c\r\n" + RID + b"\r\n"
    )
    assert await asyncio.wait_for(seen.get(), 5) == (
        b"GET /a?b=1 HTTP/1.1\r\nhost: app\r\nx-forwarded-for: 10.0.0.1, 127.0.0.1\r\n"
        + RID
        + b"x-forwarded-proto: http\r\n\r\n"
    )
    assert (
        await client.read_response()
        == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-keep: 1\r\n\r\nok"
    )
    client.close()


async def test_request_id_generated_when_absent(dataplane, upstreams):
    seen: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(reader, writer):
        seen.put_nowait(await read_request(reader))
        writer.write(ok_response())
        await reader.read()

    client = await connect(await proxy_to(dataplane, await upstreams(handler)))
    await client.send(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
    request = await asyncio.wait_for(seen.get(), 5)
    ids = [line for line in request.split(b"\r\n") if line.startswith(b"x-request-id: ")]
    assert len(ids) == 1 and len(ids[0]) == len(b"x-request-id: ") + 32
    await client.read_response()
    client.close()


BAD_REQUESTS = {
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "differing_cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    "empty_cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
    "te_gzip": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    "te_not_final_chunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "te_gzip_then_chunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "bare_cr": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
    "nul": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "bad_request_line": b"GET\r\n\r\n",
    "bad_version": b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    "space_in_name": b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
    "missing_host": b"GET / HTTP/1.1\r\nX: 1\r\n\r\n",
    "duplicate_host": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "lf_only": b"GET / HTTP/1.1\nHost: a\n\n",
    "bad_target": b"GET abc HTTP/1.1\r\nHost: a\r\n\r\n",
}

BAD_REQUEST_RESPONSE = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 12\r\n"
    b"x-gossamer-reason: bad_request\r\nconnection: close\r\n\r\nbad_request\n"
)


@pytest.mark.parametrize("raw", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_bad_request_is_400_closed_and_nothing_forwarded(dataplane, upstreams, raw):
    upstream = await upstreams(keepalive_ok)
    client = await connect(await proxy_to(dataplane, upstream))
    await client.send(raw)
    assert await client.read_until_close() == BAD_REQUEST_RESPONSE
    assert upstream.accepted == 0


HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
    b"content-length: 18\r\nx-gossamer-reason: headers_too_large\r\nconnection: close\r\n\r\n"
    b"headers_too_large\n"
)


async def test_too_many_headers_is_431(dataplane, upstreams):
    upstream = await upstreams(keepalive_ok)
    client = await connect(await proxy_to(dataplane, upstream))
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(100))
    await client.send(b"GET / HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n")
    assert await client.read_until_close() == HEADERS_TOO_LARGE
    assert upstream.accepted == 0


async def test_hundred_headers_pass(dataplane, upstreams):
    client = await connect(await proxy_to(dataplane, await upstreams(keepalive_ok)))
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(99))
    await client.send(b"GET /ok HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n")
    assert (await client.read_response()).endswith(b"\r\n\r\n/ok")


@pytest.mark.parametrize("size", [61 * 1024, 300 * 1024])
async def test_oversized_headers_are_431(dataplane, upstreams, size):
    upstream = await upstreams(keepalive_ok)
    client = await connect(await proxy_to(dataplane, upstream))
    await client.send(b"GET / HTTP/1.1\r\nHost: a\r\nx-big: " + b"a" * size + b"\r\n\r\n")
    assert await client.read_until_close() == HEADERS_TOO_LARGE
    assert upstream.accepted == 0


async def test_slow_headers_get_408(dataplane, upstreams):
    upstream = await upstreams(keepalive_ok)
    client = await connect(await proxy_to(dataplane, upstream))  # header_timeout=0.3
    await client.send(b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert await client.read_until_close() == (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 16\r\n"
        b"x-gossamer-reason: request_timeout\r\nconnection: close\r\n\r\nrequest_timeout\n"
    )
    assert upstream.accepted == 0


async def test_garbage_from_upstream_is_502_and_connection_not_reused(dataplane, upstreams):
    async def handler(reader, writer):
        request = await read_request(reader)
        if b"/garbage" in request:
            writer.write(b"SPAM SPAM SPAM\r\n\r\n")
        else:
            writer.write(ok_response())
        await writer.drain()
        await keepalive_ok(reader, writer)

    upstream = await upstreams(handler)
    client = await connect(await proxy_to(dataplane, upstream))
    await client.send(b"GET /garbage HTTP/1.1\r\nHost: a\r\n" + RID + b"\r\n")
    assert await client.read_response() == (
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 22\r\n"
        b"x-gossamer-reason: bad_upstream_response\r\nx-request-id: r1\r\n\r\n"
        b"bad_upstream_response\n"
    )
    await client.send(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert (await client.read_response()).endswith(b"\r\n\r\nok")
    assert upstream.accepted == 2  # the garbage connection was dropped, not reused


async def test_pipelined_requests_answered_in_order(dataplane, upstreams):
    client = await connect(await proxy_to(dataplane, await upstreams(keepalive_ok)))
    await client.send(b"".join(b"GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5)))
    bodies = [(await client.read_response()).split(b"\r\n\r\n")[1] for _ in range(5)]
    assert bodies == [b"/p%d" % i for i in range(5)]


async def test_pipelined_bad_request_answered_after_good_one(dataplane, upstreams):
    client = await connect(await proxy_to(dataplane, await upstreams(keepalive_ok)))
    await client.send(
        b"GET /good HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX: a\x00\r\n\r\n"
    )
    assert (await client.read_response()).endswith(b"/good")
    assert await client.read_until_close() == BAD_REQUEST_RESPONSE


async def test_chunked_request_with_trailers_is_reframed(dataplane, upstreams):
    seen: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(reader, writer):
        head = await read_head(reader)
        body = await reader.readuntil(b"0\r\nx-checksum: 7\r\n\r\n")
        seen.put_nowait(head + body)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\n\r\n"
            b"3\r\nabc\r\n0\r\nx-t: 9\r\n\r\n"
        )
        await reader.read()

    client = await connect(await proxy_to(dataplane, await upstreams(handler)))
    await client.send(
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" + RID + b"\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: 7\r\n\r\n"
    )
    assert await asyncio.wait_for(seen.get(), 5) == (
        b"POST /up HTTP/1.1\r\nhost: a\r\n"
        + RID
        + FWD.replace(RID, b"")
        + b"transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: 7\r\n\r\n"
    )
    expected = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 9\r\n\r\n"
    )
    assert await client.read_exactly(len(expected)) == expected


async def test_content_length_body_and_eof_delimited_response(dataplane, upstreams):
    async def handler(reader, writer):
        request = await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + request.split(b"\r\n\r\n")[1]
        )
        await writer.drain()

    client = await connect(await proxy_to(dataplane, await upstreams(handler)))
    await client.send(b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody")
    expected = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"
    assert await client.read_exactly(len(expected)) == expected


async def test_http10_client_gets_close_delimited_body(dataplane, upstreams):
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
        await reader.read()

    client = await connect(await proxy_to(dataplane, await upstreams(handler)))
    await client.send(b"GET / HTTP/1.0\r\n\r\n")
    assert await client.read_until_close() == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhi"


async def test_expect_100_continue_relayed(dataplane, upstreams):
    async def handler(reader, writer):
        head = await read_head(reader)
        assert b"expect: 100-continue" in head
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await reader.readexactly(5)
        writer.write(ok_response(body))
        await reader.read()

    client = await connect(await proxy_to(dataplane, await upstreams(handler)))
    await client.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    assert await client.read_exactly(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
    await client.send(b"hello")
    assert await client.read_response() == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"


async def test_head_and_no_body_statuses(dataplane, upstreams):
    async def handler(reader, writer):
        while True:
            request = await read_request(reader)
            if request.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            elif b"/204" in request:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            elif b"/304" in request:
                writer.write(b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n")
            else:
                writer.write(ok_response(b"after"))
            await writer.drain()

    upstream = await upstreams(handler)
    client = await connect(await proxy_to(dataplane, upstream))
    await client.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    expected = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"
    assert await client.read_exactly(len(expected)) == expected
    await client.send(b"GET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\n")
    expected = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\netag: x\r\n\r\n"
    assert await client.read_exactly(len(expected)) == expected
    await client.send(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
    assert await client.read_response() == ok_response(b"after").replace(
        b"content-length", b"content-length"
    )
    assert upstream.accepted == 1


async def test_connection_close_from_client(dataplane, upstreams):
    client = await connect(await proxy_to(dataplane, await upstreams(keepalive_ok)))
    await client.send(b"GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert await client.read_until_close() == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\n/bye"
    )


async def test_websocket_upgrade_tunnels_raw_bytes(dataplane, upstreams):
    upstream_saw_close = asyncio.Event()

    async def handler(reader, writer):
        head = await read_head(reader)
        assert b"connection: upgrade\r\nupgrade: websocket\r\n" in head
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        upstream_saw_close.set()

    client = await connect(await proxy_to(dataplane, await upstreams(handler)))
    await client.send(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nfirst"
    )
    expected = (
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
    )
    assert await client.read_exactly(len(expected)) == expected
    assert await client.read_exactly(5) == b"FIRST"
    await client.send(b"\x81\x00raw\xffbytes")
    assert await client.read_exactly(11) == b"\x81\x00RAW\xffBYTES"
    client.close()
    await asyncio.wait_for(upstream_saw_close.wait(), 5)  # the tunnel's far side closes too


async def test_pool_reuses_upstream_connection(dataplane, upstreams):
    upstream = await upstreams(keepalive_ok)
    port = await proxy_to(dataplane, upstream)
    for i in range(3):
        client = await connect(port)  # separate client connections share the pool
        await client.send(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
        assert (await client.read_response()).endswith(b"/%d" % i)
        client.close()
    assert upstream.accepted == 1


async def test_stale_pooled_connection_is_retried_at_once(dataplane, upstreams):
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(ok_response(b"first"))
        await writer.drain()
        await read_request(reader)  # the next request on this connection: close unanswered

    upstream = await upstreams(handler)
    client = await connect(await proxy_to(dataplane, upstream))
    await client.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert (await client.read_response()).endswith(b"first")
    await client.send(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert (await client.read_response()).endswith(b"first")  # answered by a fresh connection
    assert upstream.accepted == 2


async def test_stale_pooled_connection_not_retried_for_post(dataplane, upstreams):
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(ok_response(b"first"))
        await writer.drain()
        await read_request(reader)

    upstream = await upstreams(handler)
    client = await connect(await proxy_to(dataplane, upstream))
    await client.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
    await client.read_response()
    await client.send(b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n" + RID + b"\r\nx")
    assert (await client.read_response()).startswith(
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 15\r\n"
        b"x-gossamer-reason: upstream_reset\r\n"
    )
    assert upstream.accepted == 1


async def test_connect_failure_is_503(dataplane, upstreams):
    upstream = await upstreams(keepalive_ok)
    port = await proxy_to(dataplane, upstream)
    upstream.close()
    assert upstream.server is not None
    await upstream.server.wait_closed()
    client = await connect(port)
    await client.send(b"GET / HTTP/1.1\r\nHost: a\r\n" + RID + b"\r\n")
    assert await client.read_response() == (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 16\r\n"
        b"x-gossamer-reason: connect_failure\r\nx-request-id: r1\r\n\r\nconnect_failure\n"
    )


async def test_upstream_dying_between_head_and_body_is_a_clean_502(dataplane, upstreams):
    async def head_then_die(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        await writer.drain()  # then the handler returns: the connection closes

    client = await connect(await proxy_to(dataplane, await upstreams(head_then_die)))
    await client.send(b"GET / HTTP/1.1\r\nHost: a\r\n" + RID + b"\r\n")
    assert await client.read_response() == (
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 15\r\n"
        b"x-gossamer-reason: upstream_reset\r\nx-request-id: r1\r\n\r\nupstream_reset\n"
    )


async def test_http10_keep_alive_with_known_length(dataplane, upstreams):
    client = await connect(await proxy_to(dataplane, await upstreams(keepalive_ok)))
    for path in (b"/a", b"/b"):
        await client.send(b"GET " + path + b" HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert await client.read_response() == (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n" + path
        )


async def test_upstream_connection_close_is_not_pooled(dataplane, upstreams):
    async def closes(reader, writer):
        await read_request(reader)
        writer.write(ok_response(b"once", b"Connection: close\r\n"))
        await writer.drain()

    upstream = await upstreams(closes)
    client = await connect(await proxy_to(dataplane, upstream))
    for _ in range(2):
        await client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert await client.read_response() == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nonce"
    assert upstream.accepted == 2
