"""Large bodies stream through with bounded memory (flow control both ways)."""

from __future__ import annotations

import asyncio
import os

import pytest
import uvloop
from test_framing_kit import connect, content_length, ok_response, read_head

from gossamer.proxy.dataplane import DataPlane

# pytest-asyncio deprecates this override in favour of a loop-factory hook, which would
# apply to every test in the directory; the override keeps uvloop to these modules.
pytestmark = pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy"')


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """The sidecar runs on uvloop; so do these tests."""
    return uvloop.EventLoopPolicy()


MiB = 1024 * 1024
PIECE = b"x" * (256 * 1024)
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Peak:
    def __init__(self) -> None:
        self.base = rss()
        self.peak = self.base

    def sample(self) -> None:
        self.peak = max(self.peak, rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / MiB


async def upload_and_download(plane: DataPlane, upstreams, size: int) -> float:
    peak = Peak()

    async def sink_and_source(reader, writer):
        while True:
            head = await read_head(reader)
            if head.startswith(b"POST"):
                remaining = content_length(head)
                while remaining:
                    # Small reads keep this upstream slower than the client: back-pressure.
                    remaining -= len(await reader.read(min(remaining, 16 * 1024)))
                writer.write(ok_response(b"%d" % content_length(head)))
            else:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
                for _ in range(size // len(PIECE)):
                    writer.write(PIECE)
                    await writer.drain()
            await writer.drain()

    upstream = await upstreams(sink_and_source)
    port = await plane.start_inbound("127.0.0.1", 0, "127.0.0.1", upstream.port)

    client = await connect(port)
    await client.send(b"POST /up HTTP/1.1\r\nHost: a\r\ncontent-length: %d\r\n\r\n" % size)
    for i in range(size // len(PIECE)):
        client.writer.write(PIECE)
        await client.writer.drain()
        if i % 16 == 0:
            peak.sample()
    assert (await client.read_response()).endswith(b"\r\n\r\n%d" % size)
    client.close()

    client = await connect(port)
    await client.send(b"GET /down HTTP/1.1\r\nHost: a\r\n\r\n")
    head = await read_head(client.reader)
    assert content_length(head) == size
    received = 0
    reads = 0
    while received < size:
        received += len(await client.reader.read(256 * 1024))
        reads += 1
        if reads % 16 == 0:
            peak.sample()
    assert received == size
    client.close()
    return peak.growth_mib


async def test_200_mib_each_way_with_bounded_memory(dataplane, upstreams):
    growth = await upload_and_download(dataplane, upstreams, 200 * MiB)
    print(f"RSS growth streaming 200 MiB each way: {growth:.1f} MiB")
    assert growth < 48


@pytest.mark.slow
async def test_1_gib_each_way_with_bounded_memory(dataplane, upstreams):
    growth = await upload_and_download(dataplane, upstreams, 1024 * MiB)
    print(f"RSS growth streaming 1 GiB each way: {growth:.1f} MiB")
    assert growth < 48
