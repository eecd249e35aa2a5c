"""Access logs: one JSON line per request, to a file or stdout (`--access-log PATH|-`).

The hot path appends one tuple of references; the writer task formats and writes them every
FLUSH_SECONDS, or sooner once FLUSH_LINES are waiting, in a worker thread so a slow disk or
pipe never stalls the event loop. Beyond MAX_PENDING lines the newest are dropped and
counted (`gossamer_telemetry_dropped_total{kind="access_log"}`).
"""

from __future__ import annotations

import asyncio
import json
import json.encoder
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gossamer.proxy.telemetry.context import TRACEPARENT, parse_traceparent
from gossamer.proxy.telemetry.series import SeriesKey, route_label

if TYPE_CHECKING:
    from gossamer.proxy.http.exchange import Exchange
    from gossamer.proxy.http.server import ClientConnection
    from gossamer.proxy.telemetry.stats import Stats

FLUSH_SECONDS = 1.0
FLUSH_LINES = 512
MAX_PENDING = 20_000

# (wall time, key, exchange, caller identity, end loop time)
Entry = tuple[float, SeriesKey, Any, Any, float]


def open_target(path: str) -> int:
    """A file descriptor to append to: stdout for "-", else the file (created 0644)."""
    if path == "-":
        return 1
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
_seconds: list[object] = [None, ""]  # (whole second, its formatted prefix): one per second


def _timestamp(wall: float) -> str:
    """RFC 3339 in UTC with milliseconds; the date part is formatted once per second."""
    second = int(wall)
    if _seconds[0] != second:
        _seconds[0], _seconds[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_seconds[1]}.{int((wall - second) * 1000):03d}+00:00"


def _trace_id(ex: Any) -> str:
    span = ex.span
    if span is not None:
        return str(span.trace_id)
    for name, value in ex.head.headers:
        if name == TRACEPARENT:
            ctx = parse_traceparent(value)
            return ctx.trace_id if ctx is not None else ""
    return ""


def format_entry(entry: Entry) -> str:
    """One JSON line (fields in docs/telemetry.md), built as text: the writer formats
    thousands of these a second, and a dict plus `json.dumps` costs several times more."""
    wall, key, ex, identity, end = entry
    direction, src, dst, route, rule, subset, mtls = key
    head = ex.head
    address, port = ex.key
    spiffe = identity if isinstance(identity, str) else getattr(identity, "spiffe_id", "")
    upstream_ms = f"{(end - ex.sent_at) * 1000:.3f}" if ex.sent_at else "null"
    path = ex.upstream_target.partition(b"?")[0]
    return (
        f'{{"timestamp":"{_timestamp(wall)}","direction":"{direction}",'
        f'"requestId":{_quote(head.request_id.decode("latin-1"))},"traceId":"{_trace_id(ex)}",'
        f'"source":{_quote(src)},"sourceIdentity":{_quote(spiffe or "")},'
        f'"destination":{_quote(dst)},"subset":{_quote(f"version={subset}" if subset else "")},'
        f'"mtls":{"true" if mtls else "false"},"route":{_quote(route_label(route, rule))},'
        f'"method":{_quote(head.method.decode("latin-1"))},'
        f'"authority":{_quote(head.host.decode("latin-1"))},'
        f'"path":{_quote(path.decode("latin-1"))},'
        f'"upstream":{_quote(f"{address}:{port}" if address else "")},'
        f'"attempts":{ex.attempt},"status":{ex.status},"responseFlag":{_quote(ex.reason)},'
        f'"bytesIn":{ex.body_size},"bytesOut":{ex.response_bytes},'
        f'"durationMs":{(end - ex.measured_from) * 1000:.3f},"upstreamDurationMs":{upstream_ms}}}\n'
    )


class AccessLog:
    def __init__(self, stats: Stats, fd: int, clock: Callable[[], float] = time.time) -> None:
        self.stats = stats
        self.fd = fd
        self.clock = clock
        self.pending: list[Entry] = []
        self.written = 0
        self._wake = asyncio.Event()

    def record(self, conn: ClientConnection, ex: Exchange, key: SeriesKey, now: float) -> None:
        pending = self.pending
        if len(pending) >= MAX_PENDING:
            self.stats.drop("access_log")
            return
        pending.append((self.clock(), key, ex, conn.identity, now))
        if len(pending) == FLUSH_LINES:
            self._wake.set()

    def format(self, entries: list[Entry]) -> bytes:
        return "".join(format_entry(e) for e in entries).encode()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    async def flush(self) -> None:
        entries, self.pending = self.pending, []
        if not entries:
            return
        data = self.format(entries)
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._write, data)
        except OSError:
            self.stats.drop("access_log", len(entries))
            return
        self.written += len(entries)

    async def run(self) -> None:
        """Write until cancelled; what is pending at cancellation is written first."""
        try:
            while True:
                self._wake.clear()
                if len(self.pending) < FLUSH_LINES:
                    try:
                        await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
                    except TimeoutError:
                        pass
                await self.flush()
        finally:
            entries, self.pending = self.pending, []
            if entries:
                try:
                    self._write(self.format(entries))
                except OSError:
                    self.stats.drop("access_log", len(entries))
