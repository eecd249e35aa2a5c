"""Golden metrics without Prometheus: the control plane's view of what proxies measured.

Proxies push deltas (docs/protocol.md, "Telemetry from proxies"); this keeps one
SeriesWindow per series and answers window queries by merging histograms.

Cost per sidecar: one POST every reportInterval (5 s), independent of its request rate;
ingesting it is O(series * buckets). Memory per series is bounded: at most 60 slots, each
with 6 code classes, 14 bucket counts, one float and at most 50 paths. A sidecar contributes
one series per (direction, peer service, route, subset) it served in the last 10 minutes;
series idle for 10 minutes are dropped, and the whole table is capped at `max_series`.

Reports are deltas, so a proxy restart (its counters start at zero) needs no reset
detection: its next report simply adds what it measured. A report re-sent after a lost
answer (its interval ends no later than the last one accepted from that proxy) is ignored
so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gossamer.control.telemetry.histogram import quantile
from gossamer.control.telemetry.report import Report, SeriesKey
from gossamer.control.telemetry.window import HORIZON_SECONDS, SeriesWindow, Totals

DEFAULT_MAX_SERIES = 50_000
MAX_PROXIES = 50_000
TOP_PATHS = 20


def summarize(totals: Totals, now: float, window: float) -> dict[str, Any]:
    """requests, rps, successRate and p50/p95/p99 (seconds) of one merged window."""
    requests = totals.requests
    # Rate over the time the data covers: a series 20 s old is not diluted over 60 s.
    span = min(window, max(now - totals.first_start, 1.0)) if requests else window
    return {
        "requests": requests,
        "rps": round(requests / span, 3),
        "successRate": None if requests == 0 else round(1 - totals.failures / requests, 6),
        "p50": quantile(0.50, totals.counts),
        "p95": quantile(0.95, totals.counts),
        "p99": quantile(0.99, totals.counts),
    }


class TelemetryStore:
    def __init__(self, max_series: int = DEFAULT_MAX_SERIES) -> None:
        self.max_series = max_series
        self.series: dict[SeriesKey, SeriesWindow] = {}
        self.last_end: dict[str, tuple[float, float]] = {}  # proxy -> (interval end, seen at)
        self.reports = 0
        self.duplicates = 0
        self.dropped_series = 0
        self._swept_at = 0.0

    def ingest(self, proxy_id: str, report: Report, now: float) -> bool:
        """Fold one report in at `now`. False if it was a re-sent duplicate (ignored)."""
        previous = self.last_end.get(proxy_id)
        if previous is not None and report.end <= previous[0]:
            self.duplicates += 1
            return False
        if previous is None and len(self.last_end) >= MAX_PROXIES:
            self.sweep(now, force=True)
        self.last_end[proxy_id] = (report.end, now)
        for item in report.series:
            window = self.series.get(item.key)
            if window is None:
                if len(self.series) >= self.max_series:
                    self.dropped_series += 1
                    continue
                window = self.series[item.key] = SeriesWindow()
            window.add(now, item.codes, item.counts, item.total_seconds, item.paths, report.start)
        self.reports += 1
        self.sweep(now)
        return True

    def sweep(self, now: float, force: bool = False) -> None:
        """Drop series and proxies silent for the whole horizon (at most once a minute)."""
        if not force and now - self._swept_at < 60.0:
            return
        self._swept_at = now
        for key in [k for k, w in self.series.items() if w.expired(now)]:
            del self.series[key]
        for proxy in [p for p, (_, seen) in self.last_end.items() if now - seen > HORIZON_SECONDS]:
            del self.last_end[proxy]

    def _group(
        self, now: float, window: float, pick: Callable[[SeriesKey], Iterable[str] | None]
    ) -> dict[str, Totals]:
        groups: dict[str, Totals] = {}
        for key, series in self.series.items():
            for name in pick(key) or ():
                series.totals(now, window, groups.setdefault(name, Totals()))
        return {name: t for name, t in groups.items() if t.requests}

    def services(
        self, now: float, window: float, direction: str = "outbound"
    ) -> list[dict[str, Any]]:
        """Per destination service, with per-subset and per-route breakdowns.

        `outbound` counts what callers saw (one per logical request, retries hidden, every
        route known); `inbound` what the destination's sidecars served (each attempt)."""
        out = []
        for service, totals in sorted(self._by_dst(now, window, direction, "").items()):
            item = {"service": service, **summarize(totals, now, window)}
            for field, position in (("subsets", 4), ("routes", 3)):
                parts = self._by_dst(now, window, direction, service, position)
                item[field] = {k: summarize(t, now, window) for k, t in sorted(parts.items())}
            out.append(item)
        return out

    def _by_dst(
        self, now: float, window: float, direction: str, service: str, position: int = 2
    ) -> dict[str, Totals]:
        def pick(key: SeriesKey) -> list[str] | None:
            if key[0] != direction or (service and key[2] != service):
                return None
            return [str(key[position])]

        return self._group(now, window, pick)

    def edges(self, now: float, window: float, service: str = "") -> list[dict[str, Any]]:
        """Who calls whom (outbound view); `mtls` only when every request was protected."""
        groups: dict[str, Totals] = {}
        mtls: dict[str, bool] = {}
        for key, series in self.series.items():
            direction, src, dst, _, _, protected = key
            if direction != "outbound" or (service and service not in (src, dst)):
                continue
            edge = f"{src}\n{dst}"
            series.totals(now, window, groups.setdefault(edge, Totals()))
            before = mtls.get(edge, True)
            mtls[edge] = before and protected
        out = []
        for edge, totals in sorted(groups.items()):
            if not totals.requests:
                continue
            src, dst = edge.split("\n")
            stats = summarize(totals, now, window)
            del stats["p95"]
            out.append({"src": src, "dst": dst, **stats, "mtls": mtls[edge]})
        return out

    def top(
        self, service: str, now: float, window: float, limit: int = TOP_PATHS
    ) -> list[dict[str, Any]]:
        """The busiest paths called on `service` (outbound view), busiest first."""
        totals = self._by_dst(now, window, "outbound", service).get(service, Totals())
        span = min(window, max(now - totals.first_start, 1.0))
        busiest = sorted(totals.paths.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [{"path": p, "requests": n, "rps": round(n / span, 3)} for p, n in busiest]
