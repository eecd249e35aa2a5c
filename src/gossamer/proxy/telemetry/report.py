"""The telemetry push (docs/protocol.md, "Telemetry from proxies").

Every interval the reporter diffs the cumulative series against what it last reported and
POSTs the deltas. Nothing is queued: a report that fails is retried as it is (same interval,
so the control plane ignores it if it had in fact arrived), and everything measured meanwhile
stays in the counters until the next report. Memory is therefore bounded by the number of
series, however long the control plane is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gossamer.proxy.telemetry.series import SeriesKey, route_label, status_class
from gossamer.wire import BUCKETS

if TYPE_CHECKING:
    from gossamer.proxy.control_client import HttpClient
    from gossamer.proxy.telemetry.series import Series
    from gossamer.proxy.telemetry.stats import Stats

TOP_PATHS = 20
FINAL_REPORT_SECONDS = 1.0
DEFAULT_INTERVAL = 5.0

# What was last reported per series: (codes, counts, total seconds).
Sent = dict[SeriesKey, tuple[dict[int, int], list[int], float]]


def reportable(key: SeriesKey) -> bool:
    """Series the control plane aggregates: a known destination service (egress and
    requests refused before routing stay in Prometheus only)."""
    return bool(key[2])


def build_report(
    series: dict[SeriesKey, Series], sent: Sent, start: float, end: float
) -> dict[str, Any]:
    """The deltas since `sent` (updated in place to the current totals); takes the paths."""
    items: list[dict[str, Any]] = []
    for key, s in list(series.items()):
        if not reportable(key):
            continue
        before = sent.get(key)
        codes_now, counts_now, total_now = dict(s.codes), list(s.counts), s.total
        paths, s.paths = s.paths, {}
        if before is None:
            codes_then: dict[int, int] = {}
            counts_then = [0] * len(counts_now)
            total_then = 0.0
        else:
            codes_then, counts_then, total_then = before
        sent[key] = (codes_now, counts_now, total_now)
        counts = [now - then for now, then in zip(counts_now, counts_then, strict=True)]
        if not any(counts):
            continue
        classes: dict[str, int] = {}
        for status, n in codes_now.items():
            delta = n - codes_then.get(status, 0)
            if delta:
                name = status_class(status)
                classes[name] = classes.get(name, 0) + delta
        direction, src, dst, route, rule, subset, mtls = key
        top = sorted(paths.items(), key=lambda item: (-item[1], item[0]))[:TOP_PATHS]
        items.append(
            {
                "direction": direction,
                "src": src,
                "dst": dst,
                "route": route_label(route, rule),
                "subset": f"version={subset}" if subset else "",
                "mtls": mtls,
                "codes": classes,
                "counts": counts,
                "sum": max(0.0, total_now - total_then),
                "paths": {p.decode("latin-1"): n for p, n in top},
            }
        )
    return {"interval": [start, end], "buckets": list(BUCKETS), "series": items}


class Reporter:
    def __init__(
        self,
        stats: Stats,
        http: HttpClient,
        proxy_id: str,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.stats = stats
        self.http = http
        self.path = f"/api/v1/proxies/{quote(proxy_id, safe='')}/telemetry"
        self.interval = interval
        self.clock = clock
        self.log = log
        self.sent: Sent = {}
        self.pending: dict[str, Any] | None = None  # built but not yet delivered
        self.last_end = clock()
        self.delivered = 0
        self.failures = 0

    async def report_once(self) -> bool:
        """Deliver the pending report (if any), then a new one; False if delivery failed."""
        if self.pending is not None and not await self._deliver(self.pending):
            return False
        end = self.clock()
        self.pending = build_report(self.stats.series, self.sent, self.last_end, end)
        self.last_end = end
        return await self._deliver(self.pending)

    async def _deliver(self, report: dict[str, Any]) -> bool:
        from gossamer.proxy.control_client import ControlError

        if not report["series"]:
            self.pending = None
            return True
        try:
            status, body = await self.http.request("POST", self.path, report)
        except ControlError as exc:
            return self._failed(f"telemetry report not delivered ({exc}); kept for the next")
        if status == 422:
            self.log(f"telemetry report refused: {body}")  # retrying cannot fix it
        elif not 200 <= status < 300:
            return self._failed(f"telemetry report got {status}; kept for the next")
        self.pending = None
        self.delivered += 1
        self.failures = 0
        return True

    def _failed(self, message: str) -> bool:
        if not self.failures:
            self.log(message)
        self.failures += 1
        return False

    async def run(self) -> None:
        """Report every interval until cancelled; then one last report (bounded in time), so
        what a stopping sidecar served is counted too."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                await self.report_once()
        except asyncio.CancelledError:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.report_once(), FINAL_REPORT_SECONDS)
            raise
