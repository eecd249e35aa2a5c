"""Telemetry through a real DataPlane: metrics counted once per logical request, the tap
stream on a real stats listener, access log lines and trace propagation."""

from __future__ import annotations

import asyncio
import json
import shutil
from asyncio.subprocess import PIPE, STDOUT
from datetime import datetime
from pathlib import Path

import pytest
import uvloop
from test_dataplane import entry, get, install, route
from test_framing_kit import connect, keepalive_ok, ok_response, read_request

from gossamer.proxy.admin import AdminServer
from gossamer.proxy.cli import ProxyConfig
from gossamer.proxy.control_client import ControlClient
from gossamer.proxy.dataplane import DataPlane
from gossamer.proxy.runtime import HolderSink
from gossamer.proxy.telemetry.access_log import AccessLog
from gossamer.proxy.telemetry.context import parse_traceparent
from gossamer.proxy.telemetry.observe import Observability
from gossamer.proxy.telemetry.otlp import SPAN_KIND_CLIENT, SPAN_KIND_SERVER
from gossamer.proxy.telemetry.tracing import Tracer

pytestmark = pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy"')
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return uvloop.EventLoopPolicy()


async def test_a_retried_request_counts_once_and_its_attempts_twice(dataplane, upstreams):
    calls = 0

    async def flaky(reader, writer):
        nonlocal calls
        while True:
            await read_request(reader)
            calls += 1
            if calls == 1:
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            else:
                writer.write(ok_response(b"fine"))

    upstream = await upstreams(flaky)
    backends = [{"service": "default/reviews", "labels": {}, "weight": 1}]
    rules = [route(backends, retry={"attempts": 2, "backoff": 0.001, "codes": [503]})]
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port], rules)})
    dataplane.stats.service = "default/frontend"
    port = await dataplane.start_outbound("127.0.0.1", 0)
    assert (await get(port, b"GET /a HTTP/1.1\r\nHost: reviews\r\n\r\n")).endswith(b"fine")
    text = dataplane.stats.render_prometheus().decode()
    labels = 'direction="outbound",src_service="default/frontend",dst_service="default/reviews",route="default/r#0"'
    assert f'gossamer_requests_total{{{labels},code="200"}} 1\n' in text
    assert 'code="503"' not in text  # the failed attempt is not a request
    assert f"gossamer_request_duration_seconds_count{{{labels}}} 1\n" in text
    assert "gossamer_upstream_attempts_total 2\n" in text
    assert "gossamer_retries_total 1\n" in text
    (series,) = dataplane.stats.series.values()
    assert series.paths == {b"/a": 1}
    if shutil.which("promtool"):
        check = await asyncio.create_subprocess_exec(
            "promtool", "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
        )
        out, _ = await asyncio.wait_for(check.communicate(text.encode()), 30)
        assert check.returncode == 0 and not out, out


async def observability(plane: DataPlane, **cfg: object) -> Observability:
    config = ProxyConfig(service="frontend", app_port=1, report_interval=0, **cfg)  # type: ignore[arg-type]
    client = ControlClient(
        "http://127.0.0.1:9", "frontend-1", HolderSink(plane.holder, "default"),
        registration=None, watch=[],
    )  # fmt: skip
    return Observability(config, plane.stats, client, lambda _m: None)


class TapReader:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, query: str, extra: bytes = b"") -> tuple[bytes, TapReader]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /tap?%s HTTP/1.1\r\nHost: s\r\n%s\r\n" % (query.encode(), extra))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return head, cls(reader, writer)

    async def line(self) -> bytes:
        size = int((await asyncio.wait_for(self.reader.readline(), 10)).strip(), 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]


async def test_tap_streams_filtered_summaries_without_secrets(dataplane, upstreams):
    upstream = await upstreams(keepalive_ok)
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port])})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    obs = await observability(dataplane)
    stats_server = AdminServer({}, streams={"/tap": obs.tap})
    stats_port = await stats_server.start("127.0.0.1", 0)
    try:
        await get(port, b"GET /api/before HTTP/1.1\r\nHost: reviews\r\n\r\n")  # nobody tapped
        head, tap = await TapReader.open(stats_port, "path=/api&method=GET&status=2xx")
        assert head.startswith(b"HTTP/1.1 200") and b"chunked" in head.lower()
        assert len(dataplane.stats.taps) == 1
        secret = (
            b"authorization: Bearer SECRET-A\r\ncookie: s=SECRET-C\r\n"
            b"proxy-authorization: Basic SECRET-P\r\n"
        )
        await get(port, b"GET /other HTTP/1.1\r\nHost: reviews\r\n\r\n")  # filtered out
        await get(port, b"GET /api/x?token=SECRET-Q HTTP/1.1\r\nHost: reviews\r\n%s\r\n" % secret)
        raw = await tap.line()
        summary = json.loads(raw)
        assert summary["path"] == "/api/x" and summary["status"] == 200
        assert summary["dst"] == "default/reviews" and summary["method"] == "GET"
        assert summary["upstream"] == f"127.0.0.1:{upstream.port}"
        assert summary["subset"] == "version=v1" and summary["attempts"] == 1
        assert b"SECRET" not in raw
        tap.writer.close()
        for _ in range(1000):  # the listener sees the close within a few loop turns
            if not dataplane.stats.taps:
                break
            await asyncio.sleep(0.005)
        assert dataplane.stats.taps == []

        bad, _ = await TapReader.open(stats_port, "status=9xx")
        assert bad.startswith(b"HTTP/1.1 400")
        obs.tap_credential = "s3cret"
        refused, _ = await TapReader.open(stats_port, "")
        assert refused.startswith(b"HTTP/1.1 401")
        allowed, tap = await TapReader.open(stats_port, "", b"Authorization: Bearer s3cret\r\n")
        assert allowed.startswith(b"HTTP/1.1 200")
        tap.writer.close()
    finally:
        await stats_server.close()


async def test_access_log_lines(dataplane, upstreams, tmp_path: Path):
    upstream = await upstreams(keepalive_ok)
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port])})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    path = tmp_path / "access.log"
    dataplane.stats.service = "default/frontend"
    await observability(dataplane, access_log=str(path))
    log = dataplane.stats.access_log
    assert isinstance(log, AccessLog)
    writer = asyncio.create_task(log.run())
    tp = f"00-{TRACE}-{PARENT}-01".encode()
    await get(
        port,
        b"POST /api/r?secret=1 HTTP/1.1\r\nHost: reviews\r\nx-request-id: rid-1\r\n"
        b"traceparent: %s\r\ncontent-length: 3\r\n\r\nabc" % tp,
    )
    await get(port, b"GET / HTTP/1.1\r\nHost: nowhere.example.invalid\r\n\r\n")
    hostile = b'GET /q"\\x HTTP/1.1\r\nHost: reviews\r\nx-request-id: a"b\\\xe9\r\n\r\n'
    await get(port, hostile)
    writer.cancel()  # what is pending is written on the way out
    with pytest.raises(asyncio.CancelledError):
        await writer
    first, second, third = (json.loads(line) for line in path.read_text().splitlines())
    assert third["path"] == '/q"\\x' and third["requestId"] == 'a"b\\\xe9'  # escaped JSON
    assert datetime.fromisoformat(first["timestamp"]).tzinfo is not None
    assert first["requestId"] == "rid-1" and first["traceId"] == TRACE
    assert first["method"] == "POST" and first["path"] == "/api/r" and first["status"] == 200
    assert first["destination"] == "default/reviews" and first["source"] == "default/frontend"
    assert first["upstream"] == f"127.0.0.1:{upstream.port}" and first["responseFlag"] == ""
    assert first["bytesIn"] == 3 and first["bytesOut"] == len(b"/api/r?secret=1")
    assert 0 < first["upstreamDurationMs"] <= first["durationMs"]
    assert first["timestamp"].endswith("+00:00")
    assert second["status"] == 502 or second["responseFlag"]  # egress to a name that fails
    assert second["destination"] == ""


async def test_trace_context_is_continued_converted_and_recorded(dataplane, upstreams):
    seen: list[bytes] = []

    async def app(reader, writer):
        while True:
            request = await read_request(reader)
            seen.append(request)
            writer.write(ok_response(b"ok"))

    upstream = await upstreams(app)
    tracer = Tracer(dataplane.stats, 1.0, [("service.name", "reviews")])
    dataplane.stats.tracer = tracer
    inbound = await dataplane.start_inbound("127.0.0.1", 0, "127.0.0.1", upstream.port)

    async def call(headers: bytes) -> str | None:
        client = await connect(inbound)
        await client.send(b"GET /r?x=1 HTTP/1.1\r\nHost: reviews:9080\r\n%s\r\n" % headers)
        await client.read_response()
        client.close()
        for line in seen[-1].split(b"\r\n"):
            if line.lower().startswith(b"traceparent: "):
                return line.split(b": ", 1)[1].decode()
        return None

    # W3C, sampled: a server span, child of the caller's span; the app sees our span.
    forwarded = await call(b"traceparent: 00-%s-%s-01\r\n" % (TRACE.encode(), PARENT.encode()))
    span = tracer.queue[-1]
    assert span.kind == SPAN_KIND_SERVER and span.trace_id == TRACE and span.parent_id == PARENT
    assert forwarded == f"00-{TRACE}-{span.span_id}-01"
    attrs = dict(span.attributes)
    assert attrs["http.request.method"] == "GET" and attrs["url.path"] == "/r"
    assert attrs["http.response.status_code"] == 200 and attrs["server.port"] == 9080
    assert span.end_ns > span.start_ns and not span.error

    # B3 multi headers are accepted and converted.
    b3 = b"x-b3-traceid: %s\r\nx-b3-spanid: %s\r\nx-b3-sampled: 1\r\n" % (
        TRACE.encode(), PARENT.encode(),
    )  # fmt: skip
    forwarded = await call(b3)
    assert forwarded == f"00-{TRACE}-{tracer.queue[-1].span_id}-01"
    assert tracer.queue[-1].parent_id == PARENT

    # The caller decided not to sample: nothing recorded, its header passes untouched.
    before = len(tracer.queue)
    unsampled = f"00-{TRACE}-{PARENT}-00"
    assert await call(b"traceparent: %s\r\n" % unsampled.encode()) == unsampled
    assert len(tracer.queue) == before

    # No context at all, and our rate says no: the decision travels on as a new context.
    tracer.sampling = 0.0
    fresh = await call(b"")
    ctx = parse_traceparent((fresh or "").encode())
    assert ctx is not None and ctx.sampled is False and len(tracer.queue) == before
    assert SPAN_KIND_CLIENT != SPAN_KIND_SERVER
