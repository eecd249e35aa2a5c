"""Lean counters for the hot path: plain ints and dicts keyed by small tuples.

No prometheus_client: a finished request costs a few dict updates and one bisect; rendering
(prometheus.py) and reporting (report.py) happen off the hot path. Taps, access logs and
spans are observers that cost one `if` each while they are off.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from gossamer.proxy.telemetry.prometheus import render
from gossamer.proxy.telemetry.series import MAX_PATH_BYTES, Series, SeriesKey
from gossamer.proxy.telemetry.series import source_service as _source_service
from gossamer.wire import BUCKETS

if TYPE_CHECKING:
    from gossamer.proxy.http.exchange import Exchange
    from gossamer.proxy.http.server import ClientConnection

DIRECTIONS = ("outbound", "inbound")
TIMEOUT_REASONS = frozenset({"upstream_timeout", "request_timeout"})
MAX_REASONS = 64  # distinct TLS failure reasons kept; the rest count as "other"
MAX_SOURCES = 1024  # identities remembered for the source label


class Stats:
    def __init__(self, service: str = "", version: str = "") -> None:
        self.service = service  # our own "ns/name": src of outbound, dst of inbound series
        self.version = version  # our own `version` label: the subset of inbound series
        self.mesh_security: Any = None  # proxy/mtls.py MeshSecurity: `.enabled` while mTLS is on
        self.series: dict[SeriesKey, Series] = {}
        # (direction, reason) -> requests the proxy answered itself
        self.rejections: dict[tuple[str, str], int] = {}
        self.connections_total: dict[str, int] = dict.fromkeys(DIRECTIONS, 0)
        self.connections_active: dict[str, int] = dict.fromkeys(DIRECTIONS, 0)
        self.request_bytes: dict[str, int] = dict.fromkeys(DIRECTIONS, 0)
        self.response_bytes: dict[str, int] = dict.fromkeys(DIRECTIONS, 0)
        self.upstream_connections_active = 0
        self.upstream_attempts = 0
        self.retries = 0
        self.ejections = 0
        self.tls_failures: dict[str, int] = {}
        self.authz_denials: dict[tuple[str, str], int] = {}  # (reason code, policy) -> count
        self.dropped: dict[str, int] = {}  # telemetry shed under pressure, by kind
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self._sources: dict[object, str] = {}
        # Observers (None / empty when off): see tap.py, access_log.py, tracing.py.
        self.taps: list[Any] = []
        self.access_log: Any = None
        self.tracer: Any = None

    # the hot path --------------------------------------------------------------------------

    def exchange_done(self, conn: ClientConnection, ex: Exchange) -> None:
        """One logical request is over: count it once, whatever its attempts."""
        now = perf_counter()
        direction = conn.listener.direction
        if direction == "outbound":
            routed = ex.route
            view = getattr(routed, "view", None)
            if view is not None:
                route = routed.route
                endpoint = routed.last
                security = self.mesh_security
                key = (
                    direction,
                    self.service,
                    view.key,
                    route.route if route is not None else "",
                    route.rule if route is not None else -1,
                    endpoint.labels.get("version", "") if endpoint is not None else "",
                    security is not None and security.enabled,
                )
            else:
                key = (direction, self.service, "", "", -1, "", False)
        else:
            identity = conn.identity
            src = self._source(identity) if identity is not None else ""
            key = (direction, src, self.service, "", -1, self.version, identity is not None)
        series = self._count(key, ex.status, ex.reason, now - ex.measured_from)
        self.request_bytes[direction] += ex.body_size
        self.response_bytes[direction] += ex.response_bytes
        target = ex.upstream_target
        q = target.find(b"?")
        path = target if q < 0 else target[:q]
        series.add_path(path if len(path) <= MAX_PATH_BYTES else path[:MAX_PATH_BYTES])
        if self.taps:
            for tap in self.taps:
                tap.offer(conn, ex, key, now)
        if self.access_log is not None:
            self.access_log.record(conn, ex, key, now)
        if ex.span is not None:
            self.tracer.finish(ex, conn, now)

    def request_done(self, direction: str, status: int, reason: str = "") -> None:
        """A request answered before it became an exchange (framing errors, header timeout)."""
        if direction == "outbound":
            key = (direction, self.service, "", "", -1, "", False)
        else:
            key = (direction, "", self.service, "", -1, self.version, False)
        self._count(key, status, reason, 0.0)

    def _count(self, key: SeriesKey, status: int, reason: str, seconds: float) -> Series:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series()
        codes = series.codes
        codes[status] = codes.get(status, 0) + 1
        series.counts[bisect_left(BUCKETS, seconds)] += 1
        series.total += seconds
        if reason:
            rkey = (key[0], reason)
            self.rejections[rkey] = self.rejections.get(rkey, 0) + 1
        return series

    def _source(self, identity: object) -> str:
        src = self._sources.get(identity)
        if src is None:
            src = _source_service(identity)
            if len(self._sources) < MAX_SOURCES:
                self._sources[identity] = src
        return src

    # connections -----------------------------------------------------------------------------

    def connection_opened(self, direction: str) -> None:
        self.connections_total[direction] = self.connections_total.get(direction, 0) + 1
        self.connections_active[direction] = self.connections_active.get(direction, 0) + 1

    def connection_closed(self, direction: str) -> None:
        self.connections_active[direction] = self.connections_active.get(direction, 0) - 1

    def upstream_connection(self, delta: int) -> None:
        self.upstream_connections_active += delta

    # security events (called by the mTLS and authorization code) -----------------------------

    def tls_handshake_failure(self, reason: str) -> None:
        """A TLS handshake failed; `reason` is a short fixed code (e.g. "unknown_ca")."""
        if reason not in self.tls_failures and len(self.tls_failures) >= MAX_REASONS:
            reason = "other"
        self.tls_failures[reason] = self.tls_failures.get(reason, 0) + 1

    def authz_denied(self, code: str, policy: str) -> None:
        key = (code, policy)
        self.authz_denials[key] = self.authz_denials.get(key, 0) + 1

    # misc ------------------------------------------------------------------------------------

    def drop(self, kind: str, n: int = 1) -> None:
        """Telemetry shed to protect the proxy (a full span queue, a slow tap reader...)."""
        self.dropped[kind] = self.dropped.get(kind, 0) + n

    def register_gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A value read at scrape time (snapshot version, control-plane connection)."""
        self.gauges[name] = (help_text, read)

    @property
    def overflows(self) -> int:
        return sum(n for (_, reason), n in self.rejections.items() if reason == "overflow")

    def render_prometheus(self) -> bytes:
        return render_prometheus(self)


def render_prometheus(stats: Stats) -> bytes:
    return render(stats)
