"""One call across three services (frontend → catalog → reviews, each an app behind a real
`gossamer run` sidecar) yields one trace with the right parent-child spans at a real
OTLP/HTTP receiver that decodes with the official opentelemetry-proto package.

The apps forward `traceparent`/`tracestate` from their request to their own calls, as
instrumented apps do; the sidecars add one server span (inbound) and one client span
(outbound) per hop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

sys.path.insert(0, str(Path(__file__).resolve().parent / "proxy"))

from helpers import GOSSAMER, Procs, free_port

from gossamer.control.server import ControlServer, running
from gossamer.store.sqlite import SQLiteStore

# An app that answers its name, after calling NEXT (if set) with the trace headers it got.
CHAIN_APP = r"""
import os, sys, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, after = sys.argv[1], sys.argv[2:]
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = name.encode()
        for nxt in after:
            req = urllib.request.Request(f"http://{nxt}/from-{name}")
            for h in ("traceparent", "tracestate"):
                if self.headers.get(h):
                    req.add_header(h, self.headers[h])
            with urllib.request.urlopen(req, timeout=5) as resp:
                body += b">" + resp.read()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


class Receiver:
    """`POST /v1/traces` (OTLP/HTTP JSON), decoded into opentelemetry-proto messages."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, str], Span]] = []
        self.changed = asyncio.Event()
        self.port = 0

    async def traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        body = await request.json()
        for rs in body.get("resourceSpans", []):  # OTLP JSON ids are hex, protobuf's base64
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    for field in ("traceId", "spanId", "parentSpanId"):
                        if field in span:
                            span[field] = base64.b64encode(bytes.fromhex(span[field])).decode()
        message = json_format.Parse(json.dumps(body), ExportTraceServiceRequest())
        for rs in message.resource_spans:
            resource = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                self.spans += [(resource, span) for span in ss.spans]
        self.changed.set()
        return web.json_response({})

    async def wait_for(self, n: int, limit: float = 20.0) -> None:
        async with asyncio.timeout(limit):
            while len(self.spans) < n:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", recv.traces)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.port = runner.addresses[0][1]
    try:
        yield recv
    finally:
        await runner.cleanup()


@pytest.fixture
async def control(tmp_path: Path) -> AsyncIterator[ControlServer]:
    store = SQLiteStore(tmp_path / "gossamer.db")
    server = ControlServer(store, port=0)
    try:
        async with running(server):
            yield server
    finally:
        await store.close()


async def test_a_call_across_three_services_is_one_trace(
    tmp_path: Path, receiver: Receiver, control: ControlServer
) -> None:
    procs = Procs(tmp_path)
    chain = {"frontend": ["catalog"], "catalog": ["reviews"], "reviews": []}
    ready: dict[str, dict[str, str]] = {}
    try:
        for name, after in chain.items():
            argv = [*GOSSAMER, "run", "--service", name, "--port", str(free_port()),
                    "--control", f"http://127.0.0.1:{control.port}",
                    "--outbound-port", "0", "--inbound-port", "0", "--stats-port", "0",
                    "--admin-port", "0", "--app-grace", "2s", "--drain-grace", "1s",
                    "--otlp-endpoint", f"http://127.0.0.1:{receiver.port}",
                    "--trace-sampling", "0",  # only the caller's sampled decision counts
                    "--", sys.executable, "-c", CHAIN_APP, name, *after]  # fmt: skip
            proc = await procs.spawn(name, argv)
            ready[name] = await proc.wait_ready(b"gossamer-proxy ready")
        # A B3 caller outside the mesh, sampled: every span joins its trace.
        trace, caller_span = "80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1"
        headers = {"b3": f"{trace}-{caller_span}-1"}
        url = f"http://127.0.0.1:{ready['frontend']['inbound']}/books"
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert await resp.text() == "frontend>catalog>reviews"
        await receiver.wait_for(5)
    finally:
        await procs.close()

    by_id = {span.span_id.hex(): (res, span) for res, span in receiver.spans}
    assert len(by_id) == 5, [(r["service.name"], s.name) for r, s in receiver.spans]
    assert {span.trace_id.hex() for _, span in by_id.values()} == {trace}

    def one(service: str, kind: int) -> Span:
        (span,) = [s for r, s in by_id.values() if r["service.name"] == service and s.kind == kind]
        return span

    server, client = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT
    front_in, front_out = one("frontend", server), one("frontend", client)
    cat_in, cat_out = one("catalog", server), one("catalog", client)
    rev_in = one("reviews", server)
    assert front_in.parent_span_id.hex() == caller_span
    assert front_out.parent_span_id == front_in.span_id
    assert cat_in.parent_span_id == front_out.span_id
    assert cat_out.parent_span_id == cat_in.span_id
    assert rev_in.parent_span_id == cat_out.span_id
    # Children run inside their parents.
    for parent, child in ((front_in, front_out), (front_out, cat_in), (cat_out, rev_in)):
        assert parent.start_time_unix_nano <= child.start_time_unix_nano
        assert child.end_time_unix_nano <= parent.end_time_unix_nano
    attrs: dict[str, Any] = {a.key: a.value for a in front_out.attributes}
    assert attrs["http.request.method"].string_value == "GET"
    assert attrs["http.response.status_code"].int_value == 200
    assert attrs["server.address"].string_value == "catalog"
    assert attrs["gossamer.destination"].string_value == "default/catalog"
    server_attrs = {a.key: a.value for a in rev_in.attributes}
    assert server_attrs["url.path"].string_value == "/from-catalog"
    assert server_attrs["url.scheme"].string_value in ("http", "https")  # https under mTLS
    assert all(s.status.code == 0 for _, s in by_id.values())
