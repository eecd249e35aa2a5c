"""Access logs: one JSON line per request, to a file or stdout (`--access-log PATH|-`).

The hot path appends one tuple of references; the writer task formats and writes them every
FLUSH_SECONDS, or sooner once FLUSH_LINES are waiting, in a worker thread so a slow disk or
pipe never stalls the event loop. Beyond MAX_PENDING lines the newest are dropped and
counted (`gossamer_telemetry_dropped_total{kind="access_log"}`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
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


def entry_fields(entry: Entry) -> dict[str, Any]:
    """The JSON object of one line (field names are documented in docs/sidecar-internals.md)."""
    wall, key, ex, identity, end = entry
    direction, src, dst, route, rule, subset, mtls = key
    head = ex.head
    trace_id = ""
    span = ex.span
    if span is not None:
        trace_id = span.trace_id
    else:
        for name, value in head.headers:
            if name == TRACEPARENT:
                ctx = parse_traceparent(value)
                trace_id = ctx.trace_id if ctx is not None else ""
                break
    address, port = ex.key
    upstream_seconds = end - ex.sent_at if ex.sent_at else None
    return {
        "timestamp": datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds"),
        "direction": direction,
        "requestId": head.request_id.decode("latin-1"),
        "traceId": trace_id,
        "source": src,
        "sourceIdentity": identity
        if isinstance(identity, str)
        else getattr(identity, "spiffe_id", ""),
        "destination": dst,
        "subset": f"version={subset}" if subset else "",
        "mtls": mtls,
        "route": route_label(route, rule),
        "method": head.method.decode("latin-1"),
        "authority": head.host.decode("latin-1"),
        "path": ex.upstream_target.partition(b"?")[0].decode("latin-1"),
        "upstream": f"{address}:{port}" if address else "",
        "attempts": ex.attempt,
        "status": ex.status,
        "responseFlag": ex.reason,
        "bytesIn": ex.body_size,
        "bytesOut": ex.response_bytes,
        "durationMs": round((end - ex.measured_from) * 1000, 3),
        "upstreamDurationMs": round(upstream_seconds * 1000, 3) if upstream_seconds else None,
    }


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
        return b"".join(
            json.dumps(entry_fields(e), separators=(",", ":")).encode() + b"\n" for e in entries
        )

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
