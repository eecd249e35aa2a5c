"""Simulated proxies: many snapshot streams in one asyncio process, each ACKing every version.

Each subscriber opens /api/v1/proxies/{id}/stream as a gateway-style proxy would (no
register), watches a list of services, and POSTs an ACK for every snapshot or delta.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from bench.lean_http import KeepAliveClient, stream_lines

CONNECTS_AT_ONCE = 64  # stay under the server's listen backlog while a thousand connect


@dataclass
class Subscriber:
    proxy_id: str
    watch: tuple[str, ...]
    acked: int = 0


class Fleet:
    """Tracks how many subscribers have ACKed at least a given version, without scanning."""

    def __init__(
        self,
        base_url: str,
        subscribers: Sequence[Subscriber],
        service: str,
        headers: dict[str, str],
    ) -> None:
        self.base_url = base_url
        self.service = service
        self.headers = headers
        self.subscribers = list(subscribers)
        self._acked_versions: Counter[int] = Counter({0: len(self.subscribers)})
        self._received_versions: Counter[int] = Counter({0: len(self.subscribers)})
        self._received: dict[str, int] = {}
        self.last_received_at = 0.0  # perf_counter of the latest first-receipt of a version
        self._progress = asyncio.Event()
        self._connect_slots = asyncio.Semaphore(CONNECTS_AT_ONCE)
        self.errors: list[str] = []

    def count_at_least(self, version: int) -> int:
        return sum(n for v, n in self._acked_versions.items() if v >= version)

    def received_at_least(self, version: int) -> int:
        return sum(n for v, n in self._received_versions.items() if v >= version)

    def _record_receipt(self, sub: Subscriber, version: int) -> None:
        before = self._received.get(sub.proxy_id, 0)
        if version <= before:
            return
        self._received_versions[before] -= 1
        if not self._received_versions[before]:
            del self._received_versions[before]
        self._received_versions[version] += 1
        self._received[sub.proxy_id] = version
        self.last_received_at = time.perf_counter()

    async def wait_all_acked(self, version: int) -> None:
        """Return at the moment the last subscriber's ACK for >= `version` was answered."""
        while self.count_at_least(version) < len(self.subscribers):
            if self.errors:
                raise RuntimeError(f"subscriber failed: {self.errors[0]}")
            self._progress.clear()
            await self._progress.wait()

    def _record_ack(self, sub: Subscriber, version: int) -> None:
        if version <= sub.acked:
            return
        self._acked_versions[sub.acked] -= 1
        if not self._acked_versions[sub.acked]:
            del self._acked_versions[sub.acked]
        self._acked_versions[version] += 1
        sub.acked = version
        self._progress.set()

    async def run_one(self, sub: Subscriber) -> None:
        base = f"/api/v1/proxies/{sub.proxy_id}"
        query = urlencode(
            {
                "protocol": "1",
                "service": "bench-sub",
                "namespace": "default",
                "watch": ",".join(sub.watch),
            }
        )
        acks = KeepAliveClient(self.base_url, self.headers)
        try:
            async with self._connect_slots:
                lines = stream_lines(self.base_url, f"{base}/stream?{query}", self.headers)
                first = await anext(lines)
            await self._handle(sub, first, acks, base)
            async for line in lines:
                await self._handle(sub, line, acks, base)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
            self.errors.append(f"{sub.proxy_id}: {exc!r}")
            self._progress.set()
        finally:
            acks.close()

    async def _handle(self, sub: Subscriber, line: bytes, acks: KeepAliveClient, base: str) -> None:
        if not line.strip():
            return
        message = json.loads(line)
        if message.get("type") not in ("snapshot", "delta"):
            return
        version = int(message["version"])
        self._record_receipt(sub, version)
        status, body = await acks.post(f"{base}/ack", b'{"version": %d}' % version)
        if status >= 300:
            raise ConnectionError(f"ack {status}: {body[:300]!r}")
        self._record_ack(sub, version)


def watch_lists(count: int, services: Sequence[str], per_proxy: int) -> list[tuple[str, ...]]:
    """Every proxy watches services[0] (the one the changes touch) and `per_proxy - 1` others,
    spread evenly over the rest."""
    hot, rest = services[0], services[1:]
    lists = []
    for i in range(count):
        others = [rest[(i * (per_proxy - 1) + j) % len(rest)] for j in range(per_proxy - 1)]
        lists.append((hot, *others))
    return lists
