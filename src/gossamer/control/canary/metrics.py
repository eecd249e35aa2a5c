"""Where the canary controller reads golden metrics: the control plane's telemetry, in process.

The controller needs one thing: for a service's subset, the requests, success rate and p99
of its *upstream attempts* over the last `window` seconds. That is the `inbound` view of
the telemetry aggregator (what the destination's sidecars served, each attempt counted;
the `outbound` view counts logical requests, so retries would hide a failing canary).
Subsets are named by their `version` label, as telemetry names them (docs/protocol.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from gossamer.control.canary.decide import NO_TRAFFIC, SubsetStats


class MetricsSource(Protocol):
    def subset_stats(self, service: str, subset: str, window: float) -> SubsetStats:
        """Attempts served by `service` ("ns/name") in `subset` ("version=v2") lately."""
        ...


class ServicesQuery(Protocol):
    def services(
        self, now: float, window: float, direction: str = "outbound"
    ) -> list[dict[str, Any]]: ...


def subset_name(labels: dict[str, str]) -> str:
    return f"version={labels['version']}" if "version" in labels else ""


def stats_from_summary(summary: dict[str, Any] | None) -> SubsetStats:
    """SubsetStats from one `GET /api/v1/metrics/services` summary (requests, successRate, p99)."""
    if not summary or not summary.get("requests"):
        return NO_TRAFFIC
    return SubsetStats(int(summary["requests"]), summary.get("successRate"), summary.get("p99"))


class TelemetryMetrics:
    """A MetricsSource over the telemetry aggregator (control/telemetry), read in process."""

    def __init__(self, telemetry: ServicesQuery, clock: Callable[[], float]) -> None:
        self.telemetry = telemetry
        self.clock = clock  # the clock the aggregator's slots were filled with

    def subset_stats(self, service: str, subset: str, window: float) -> SubsetStats:
        for item in self.telemetry.services(self.clock(), max(window, 1.0), "inbound"):
            if item.get("service") == service:
                return stats_from_summary((item.get("subsets") or {}).get(subset))
        return NO_TRAFFIC
