"""A gentle load generator: GET http://<host>/ through a sidecar's outbound (HTTP proxy) port,
a few requests a second, with a one-line report every few seconds."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable


async def get_via_proxy(
    proxy_host: str, proxy_port: int, host: str, path: str = "/"
) -> tuple[int, bytes]:
    """One plain HTTP/1.1 GET through an HTTP proxy (absolute-form request target)."""
    reader, writer = await asyncio.open_connection(proxy_host, proxy_port)
    try:
        writer.write(
            f"GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n"
            "User-Agent: gossamer-demo-load\r\nConnection: close\r\n\r\n".encode("latin-1")
        )
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {raw[:60]!r}")
    return int(parts[1]), body


class LoadGenerator:
    def __init__(
        self, proxy_host: str, proxy_port: int, host: str, rps: float, report_every: float = 10.0
    ) -> None:
        self.proxy_host = proxy_host
        self.proxy_port = proxy_port
        self.host = host
        self.interval = 1.0 / max(rps, 0.1)
        self.report_every = report_every
        self.total: Counter[str] = Counter()
        self.window: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()

    def record(self, outcome: str, body: bytes = b"") -> None:
        self.total[outcome] += 1
        self.window[outcome] += 1
        for version in (b'"version": "v1"', b'"version": "v2"'):
            self.versions[version[-3:-1].decode()] += body.count(version)

    def summary(self) -> str:
        n = sum(self.total.values())
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.total.items()))
        reviews = ", ".join(f"reviews {k}: {v}" for k, v in sorted(self.versions.items()))
        return f"load: {n} requests ({codes}); {reviews or 'no reviews seen'}"

    async def one(self) -> None:
        try:
            async with asyncio.timeout(10):
                status, body = await get_via_proxy(self.proxy_host, self.proxy_port, self.host)
            self.record(str(status), body)
        except (OSError, TimeoutError, ValueError) as exc:
            self.record(type(exc).__name__)

    async def run(self, report: Callable[[str], None]) -> None:
        last_report = time.monotonic()
        while True:
            started = time.monotonic()
            await self.one()
            if started - last_report >= self.report_every:
                window = ", ".join(f"{k}: {v}" for k, v in sorted(self.window.items()))
                report(f"[load] last {self.report_every:g}s: {window}")
                self.window.clear()
                last_report = started
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
