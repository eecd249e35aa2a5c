"""Spans: a server span per inbound request, a client span per outbound one.

`start` runs before the first attempt so the upstream request carries our span as its
parent (`traceparent` rewritten in place); `finish` queues a record. The exporter task
batches records to an OTLP/HTTP collector off the hot path; a full queue drops (and counts)
rather than grows.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gossamer.proxy.telemetry import context
from gossamer.proxy.telemetry.otlp import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_SERVER,
    Attribute,
    SpanRecord,
    encode_request,
)
from gossamer.proxy.telemetry.series import route_label

if TYPE_CHECKING:
    from gossamer.proxy.control_client import HttpClient
    from gossamer.proxy.http.exchange import Exchange
    from gossamer.proxy.http.server import ClientConnection
    from gossamer.proxy.telemetry.stats import Stats

QUEUE_LIMIT = 4096
BATCH_SIZE = 512
FLUSH_SECONDS = 1.0
EXPORT_TIMEOUT = 5.0


class Span:
    __slots__ = ("kind", "parent_id", "span_id", "trace_id")

    def __init__(self, trace_id: str, span_id: str, parent_id: str, kind: int) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.kind = kind


class Tracer:
    def __init__(
        self,
        stats: Stats,
        sampling: float,
        resource: list[Attribute],
        rand: Callable[[], float] = random.random,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.stats = stats
        self.sampling = sampling
        self.resource = resource
        self.rand = rand
        self.queue_limit = queue_limit
        self.queue: collections.deque[SpanRecord] = collections.deque()
        self.exported = 0
        self._wake = asyncio.Event()

    # hot path ------------------------------------------------------------------------------

    def start(self, ex: Exchange, direction: str) -> None:
        headers = ex.head.headers
        ctx = context.extract(headers)
        if ctx is not None and ctx.sampled is not None:
            sampled = ctx.sampled  # parent-based: follow the caller's decision
        else:
            sampled = self.rand() < self.sampling
        if not sampled:  # pass our decision on, so the trace stays whole (or absent)
            if ctx is None:  # (a malformed traceparent is replaced, not followed)
                context.inject(headers, context.unsampled_root())
            elif not ctx.w3c:
                context.inject(headers, context.traceparent(ctx.trace_id, ctx.parent_id, False))
            return
        trace_id = ctx.trace_id if ctx is not None else context.new_trace_id()
        span = Span(
            trace_id,
            context.new_span_id(),
            ctx.parent_id if ctx is not None else "",
            SPAN_KIND_CLIENT if direction == "outbound" else SPAN_KIND_SERVER,
        )
        ex.span = span
        context.inject(headers, context.traceparent(trace_id, span.span_id, True))

    def finish(self, ex: Exchange, conn: ClientConnection, now: float) -> None:
        if len(self.queue) >= self.queue_limit:
            self.stats.drop("span")
            return
        end_ns = time.time_ns()
        span: Span = ex.span
        status = ex.status
        client = span.kind == SPAN_KIND_CLIENT
        record = SpanRecord(
            ex.head.method.decode("latin-1"),
            span.kind,
            span.trace_id,
            span.span_id,
            span.parent_id,
            end_ns - int((now - ex.measured_from) * 1e9),
            end_ns,
            _client_attributes(ex) if client else _server_attributes(ex, conn),
            error=status == 0 or status >= (400 if client else 500),
        )
        self.queue.append(record)
        if len(self.queue) >= BATCH_SIZE:
            self._wake.set()

    # exporter ------------------------------------------------------------------------------

    def take_batch(self) -> list[SpanRecord]:
        queue = self.queue
        return [queue.popleft() for _ in range(min(BATCH_SIZE, len(queue)))]

    async def run(self, http: HttpClient, log: Callable[[str], None]) -> None:
        """Export until cancelled: every FLUSH_SECONDS, or sooner when a batch is full."""
        failing = False
        while True:
            if len(self.queue) < BATCH_SIZE:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
                except TimeoutError:
                    pass
            batch = self.take_batch()
            if not batch:
                continue
            body = encode_request(self.resource, batch)
            ok = await _post(http, body)
            if ok:
                self.exported += len(batch)
                if failing:
                    log("trace export works again")
                failing = False
            else:
                self.stats.drop("span", len(batch))
                if not failing:
                    log("trace export failed; dropping spans until the collector answers")
                failing = True


async def _post(http: HttpClient, body: bytes) -> bool:
    from gossamer.proxy.control_client import ControlError

    try:
        status, _ = await http.request("POST", "/v1/traces", None, EXPORT_TIMEOUT, raw=body)
    except ControlError:
        return False
    return 200 <= status < 300


def _host_port(ex: Exchange) -> tuple[str, int | None]:
    host = ex.head.host.decode("latin-1")
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():  # "[::1]" alone leaves "1]": not a port
        return name, int(port)
    return host, None


def _path(ex: Exchange) -> str:
    target = ex.upstream_target
    return target.partition(b"?")[0].decode("latin-1")


def _common(ex: Exchange) -> list[Attribute]:
    attrs: list[Attribute] = [
        ("http.request.method", ex.head.method.decode("latin-1")),
        ("network.protocol.version", ex.head.version.decode("latin-1")),
    ]
    if ex.status:
        attrs.append(("http.response.status_code", ex.status))
    if ex.reason:
        attrs.append(("error.type", ex.reason))
    elif ex.status >= 500:
        attrs.append(("error.type", str(ex.status)))
    request_id = ex.head.request_id
    if request_id:
        attrs.append(("gossamer.request_id", request_id.decode("latin-1")))
    return attrs


def _server_attributes(ex: Exchange, conn: ClientConnection) -> list[Attribute]:
    attrs = _common(ex)
    host, port = _host_port(ex)
    attrs += [
        ("url.path", _path(ex)),
        ("url.scheme", conn.proto.decode("latin-1")),
        ("server.address", host),
        ("client.address", conn.peer_ip.decode("latin-1")),
    ]
    if port is not None:
        attrs.append(("server.port", port))
    return attrs


def _client_attributes(ex: Exchange) -> list[Attribute]:
    attrs = _common(ex)
    host, port = _host_port(ex)
    attrs += [
        ("url.full", f"http://{ex.head.host.decode('latin-1')}{_path(ex)}"),
        ("server.address", host),
        ("server.port", port or 80),
    ]
    if ex.attempt > 1:
        attrs.append(("http.request.resend_count", ex.attempt - 1))
    address, peer_port = ex.key
    if address:
        attrs += [("network.peer.address", str(address)), ("network.peer.port", int(peer_port))]
    routed: Any = ex.route
    view = getattr(routed, "view", None)
    if view is not None:
        attrs.append(("gossamer.destination", view.key))
        route = routed.route
        if route is not None:
            attrs.append(("gossamer.route", route_label(route.route, route.rule)))
    return attrs
