"""Open-loop load generator: requests on a fixed timetable, HdrHistogram of both latencies.

`python -m bench.openloop --url http://127.0.0.1:PORT/1k --host H --rate 1000 --duration 5`
prints one JSON line. Request i is due at start + i / rate whatever happened before it
(constant arrival rate, no coordinated omission). For each request it records

- service time: from the moment its bytes were written to the end of the response;
- latency: from its due time to the end of the response, so the time it waited for a free
  connection (the proxy being slow) counts as it would for a real client.

The event loop's timers tick in whole milliseconds, so a ticker thread sleeps to each due
time (clock_nanosleep precision) and wakes the loop; `slip` is how late a request was
written although a connection was free: the generator's own error. When more than 1 % of
requests slip by over 1 ms the run says so (`schedule_kept: false`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools  # type: ignore[import-untyped, unused-ignore]
import uvloop
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped, unused-ignore]

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
LATE_US = 1000  # a write this late (with a free connection) breaks the schedule
LATE_FRACTION = 0.01
TIMEOUT_S = 2.0


def histogram() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000, 3)  # 1 µs .. 60 s, 3 significant digits


def summary(hist: HdrHistogram) -> dict[str, float]:
    """Percentiles in ms (p50/p90/p99/p999) and the max."""
    out = {name: hist.get_value_at_percentile(p) / 1000 for name, p in PERCENTILES}
    out["max"] = hist.get_max_value() / 1000
    return out


@dataclass
class Recorder:
    warmup_until: float
    service: HdrHistogram = field(default_factory=histogram)
    latency: HdrHistogram = field(default_factory=histogram)
    slip: HdrHistogram = field(default_factory=histogram)
    completed: int = 0
    late: int = 0
    queued: int = 0  # waited for a free connection: the system's doing, not ours
    errors: dict[str, int] = field(default_factory=lambda: {"status": 0, "socket": 0, "timeout": 0})

    def record(self, due: float, sent: float, done: float) -> None:
        if due < self.warmup_until:
            return
        self.completed += 1
        self.service.record_value(max(1, round((done - sent) * 1e6)))
        self.latency.record_value(max(1, round((done - due) * 1e6)))

    def record_slip(self, due: float, sent: float) -> None:
        if due < self.warmup_until:
            return
        slip_us = max(1, round((sent - due) * 1e6))
        self.slip.record_value(slip_us)
        if slip_us > LATE_US:
            self.late += 1


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.due = 0.0
        self.sent = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def send(self, due: float) -> None:
        assert self.transport is not None
        self.due, self.busy = due, True
        self.sent = time.perf_counter()
        self.transport.write(self.gen.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("socket")

    def on_message_complete(self) -> None:
        done = time.perf_counter()
        self.busy = False
        if self.parser.get_status_code() // 100 != 2:
            self.gen.recorder.errors["status"] += 1
        else:
            self.gen.recorder.record(self.due, self.sent, done)
        self.gen.release(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)

    def _fail(self, kind: str) -> None:
        self.gen.recorder.errors[kind] += 1
        self.busy = False
        if self.transport is not None:
            self.transport.close()


class Generator:
    def __init__(self, url: str, host: str, recorder: Recorder) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        path = parts.path or "/"
        self.request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        self.recorder = recorder
        self.idle: deque[Connection] = deque()
        self.backlog: deque[float] = deque()  # due times waiting for a connection
        self.live: set[Connection] = set()

    async def connect(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            _, conn = await loop.create_connection(lambda: Connection(self), *self.address)
            self.live.add(conn)
            self.idle.append(conn)

    def fire(self, due: float) -> None:
        """Called on the loop when request `due` is due (from the ticker thread)."""
        if self.idle:
            conn = self.idle.pop()  # LIFO: the warm connections first, the rest on bursts
            conn.send(due)
            self.recorder.record_slip(due, conn.sent)
        else:
            self.backlog.append(due)
            if due >= self.recorder.warmup_until:
                self.recorder.queued += 1

    def release(self, conn: Connection) -> None:
        if self.backlog:
            conn.send(self.backlog.popleft())
        else:
            self.idle.append(conn)

    def lost(self, conn: Connection) -> None:
        self.live.discard(conn)
        if conn.busy:
            self.recorder.errors["socket"] += 1
        if conn in self.idle:
            self.idle.remove(conn)

    def outstanding(self) -> int:
        return len(self.backlog) + sum(1 for c in self.live if c.busy)

    def expire(self, now: float) -> None:
        """Requests older than TIMEOUT_S count as timeouts and their connections are dropped."""
        for conn in list(self.live):
            if conn.busy and now - conn.sent > TIMEOUT_S:
                conn._fail("timeout")


def ticker(
    loop: asyncio.AbstractEventLoop,
    gen: Generator,
    start: float,
    rate: float,
    count: int,
    stop: threading.Event,
) -> None:
    """Sleep to each due time (sub-millisecond precision) and hand the request to the loop."""
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if stop.is_set():
            return
        loop.call_soon_threadsafe(gen.fire, due)


async def run(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    start = time.perf_counter() + 0.05
    recorder = Recorder(warmup_until=start + args.warmup)
    gen = Generator(args.url, args.host, recorder)
    await gen.connect(args.connections)
    count = round(args.rate * (args.warmup + args.duration))
    stop = threading.Event()
    thread = threading.Thread(
        target=ticker, args=(loop, gen, start, args.rate, count, stop), daemon=True
    )
    thread.start()
    end = start + count / args.rate
    try:
        while time.perf_counter() < end + TIMEOUT_S:
            await asyncio.sleep(0.05)
            gen.expire(time.perf_counter())
            if not gen.live:
                break  # every connection gone: nothing more can complete
            if time.perf_counter() > end and not thread.is_alive() and not gen.outstanding():
                break
    finally:
        stop.set()
    recorder.errors["timeout"] += gen.outstanding()  # never answered
    measured = count - round(args.rate * args.warmup)
    late_fraction = recorder.late / measured if measured else 1.0
    return {
        "target_rps": args.rate,
        "achieved_rps": round(recorder.completed / args.duration, 1),
        "measured": measured,
        "completed": recorder.completed,
        "errors": recorder.errors,
        "queued": recorder.queued,
        "late": recorder.late,
        "schedule_kept": late_fraction <= LATE_FRACTION,
        "service_ms": summary(recorder.service),
        "latency_ms": summary(recorder.latency),
        "slip_ms": summary(recorder.slip),
        # Whole histograms (HdrHistogram's compressed base64) so rounds can be merged.
        "encoded": {
            "service": recorder.service.encode().decode(),
            "latency": recorder.latency.encode().decode(),
            "slip": recorder.slip.encode().decode(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openloop", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--host", required=True, help="Host header")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=0.5, help="unrecorded seconds first")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    # The ticker thread must get the GIL back quickly when the loop is busy.
    sys.setswitchinterval(0.0001)
    result = uvloop.run(run(args))
    print("OPENLOOP-JSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
