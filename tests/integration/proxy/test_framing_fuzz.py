"""Mutated requests never raise inside the proxy's callbacks, and it keeps serving."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httptools
import pytest
import uvloop
from test_dataplane import entry, install
from test_framing_kit import connect, ok_response

# pytest-asyncio deprecates this override in favour of a loop-factory hook, which would
# apply to every test in the directory; the override keeps uvloop to these modules.
pytestmark = pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy"')


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return uvloop.EventLoopPolicy()


SEEDS = [
    b"GET http://reviews/a?b=c HTTP/1.1\r\nHost: reviews\r\nx-user: 42\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: reviews\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: reviews.default:80\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody",
    b"GET /ws HTTP/1.1\r\nHost: reviews\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
]
TOKENS = [b"\r\n", b"\n", b"\r", b"\x00", b" ", b":", b"\t", b"chunked", b"-1", b"99999999999999999999",
          b"http://", b"[::1]", b"%", b"\xff", b"Content-Length: 1\r\n", b"Host: \r\n", b"0\r\n\r\n"]  # fmt: skip


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(buf) + 1)
        op = rng.random()
        if op < 0.4:
            buf[pos:pos] = rng.choice(TOKENS)
        elif op < 0.7 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        else:
            buf[pos:pos] = bytes([rng.randrange(256)])
    return bytes(buf)


async def parsing_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every complete request (any framing) with its path."""

    class Sink:
        url = b""

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_message_complete(self) -> None:
            writer.write(ok_response(self.url.partition(b"?")[0]))
            self.url = b""

    parser = httptools.HttpRequestParser(Sink())
    while data := await reader.read(65536):
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            return
        await writer.drain()


async def test_mutated_requests_never_raise_in_callbacks(dataplane, upstreams):
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    upstream = await upstreams(parsing_upstream)
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port])}, "REGISTRY_ONLY")
    outbound = await dataplane.start_outbound("127.0.0.1", 0)
    inbound = await dataplane.start_inbound("127.0.0.1", 0, "127.0.0.1", upstream.port)
    rng = random.Random(1234)
    statuses: Counter[bytes] = Counter()
    for i in range(1000):
        client = await connect(outbound if i % 2 else inbound)
        case = mutate(rng, rng.choice(SEEDS))
        await client.send(case)
        client.writer.write_eof()
        try:
            answer = await asyncio.wait_for(client.reader.read(-1), 5)  # it ends every case
        except ConnectionError:
            answer = b"reset"
        statuses[answer[9:12]] += 1
        client.close()
    assert errors == []
    assert statuses[b"400"] > 100 and statuses[b"200"] > 100, statuses
    client = await connect(outbound)
    await client.send(b"GET /still HTTP/1.1\r\nHost: reviews\r\n\r\n")
    assert (await client.read_response()).endswith(b"/still")
