"""Prometheus text exposition (format 0.0.4) of the sidecar's counters, built at scrape time.

Series are merged here into the documented label sets: `subset` and `mtls` are reporter
dimensions, not Prometheus labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gossamer.proxy.telemetry.series import route_label
from gossamer.wire import BUCKETS, SLOTS

if TYPE_CHECKING:
    from gossamer.proxy.telemetry.stats import Stats

_LE = [repr(b) if b != int(b) else f"{b:.1f}" for b in BUCKETS] + ["+Inf"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: str, value: float) -> None:
        body = f"{{{labels}}}" if labels else ""
        self.lines.append(f"{name}{body} {_number(value)}")

    def by_label(
        self, name: str, kind: str, help_text: str, label: str, values: Mapping[str, float]
    ) -> None:
        self.family(name, kind, help_text)
        for key, value in sorted(values.items()):
            self.sample(name, f'{label}="{_escape(str(key))}"', value)


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def render(stats: Stats) -> bytes:
    out = _Text()
    _requests(out, stats)
    out.family(
        "gossamer_rejections_total",
        "counter",
        "Requests the proxy answered itself (timeouts, overflows, no route...), by reason.",
    )
    for (direction, reason), n in sorted(stats.rejections.items()):
        out.sample(
            "gossamer_rejections_total", _labels((("direction", direction), ("reason", reason))), n
        )
    timeouts: dict[str, int] = dict.fromkeys(stats.connections_total, 0)
    for (direction, reason), n in stats.rejections.items():
        if reason in ("upstream_timeout", "request_timeout"):
            timeouts[direction] = timeouts.get(direction, 0) + n
    out.by_label(
        "gossamer_timeouts_total", "counter", "Requests that timed out.", "direction", timeouts
    )
    out.by_label(
        "gossamer_connections_total",
        "counter",
        "Client connections accepted.",
        "direction",
        stats.connections_total,
    )
    out.by_label(
        "gossamer_connections_active",
        "gauge",
        "Client connections open now.",
        "direction",
        stats.connections_active,
    )
    out.by_label(
        "gossamer_request_body_bytes_total",
        "counter",
        "Request body bytes received from clients.",
        "direction",
        stats.request_bytes,
    )
    out.by_label(
        "gossamer_response_body_bytes_total",
        "counter",
        "Response body bytes sent to clients.",
        "direction",
        stats.response_bytes,
    )
    singles = (
        (
            "gossamer_upstream_connections_active",
            "gauge",
            "Upstream connections open now.",
            stats.upstream_connections_active,
        ),
        (
            "gossamer_upstream_attempts_total",
            "counter",
            "Upstream attempts, retries included.",
            stats.upstream_attempts,
        ),
        ("gossamer_retries_total", "counter", "Retries sent.", stats.retries),
        ("gossamer_ejections_total", "counter", "Outlier ejections.", stats.ejections),
        (
            "gossamer_overflows_total",
            "counter",
            "Requests refused by a circuit breaker.",
            stats.overflows,
        ),
    )
    for name, kind, help_text, value in singles:
        out.family(name, kind, help_text)
        out.sample(name, "", value)
    out.by_label(
        "gossamer_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that failed, by reason.",
        "reason",
        stats.tls_failures,
    )
    out.family(
        "gossamer_authz_denials_total",
        "counter",
        "Inbound requests refused by authorization, by reason and deciding policy.",
    )
    for (code, policy), n in sorted(stats.authz_denials.items()):
        out.sample(
            "gossamer_authz_denials_total", _labels((("reason", code), ("policy", policy))), n
        )
    out.by_label(
        "gossamer_telemetry_dropped_total",
        "counter",
        "Telemetry shed to protect the data path (spans, access log lines, tap lines).",
        "kind",
        stats.dropped,
    )
    for name, (help_text, read) in sorted(stats.gauges.items()):
        out.family(name, "gauge", help_text)
        out.sample(name, "", read())
    out.lines.append("")
    return "\n".join(out.lines).encode()


def _requests(out: _Text, stats: Stats) -> None:
    # Merge the reporter's series (which also split by subset and mtls) per label set.
    codes: dict[tuple[str, str, str, str], dict[int, int]] = {}
    hists: dict[tuple[str, str, str, str], tuple[list[int], list[float]]] = {}
    for key, series in list(stats.series.items()):
        direction, src, dst, route, rule, _subset, _mtls = key
        labels = (direction, src, dst, route_label(route, rule))
        merged = codes.setdefault(labels, {})
        for status, n in series.codes.items():
            merged[status] = merged.get(status, 0) + n
        counts, total = hists.setdefault(labels, ([0] * SLOTS, [0.0]))
        for i, n in enumerate(series.counts):
            counts[i] += n
        total[0] += series.total
    names = ("direction", "src_service", "dst_service", "route")
    out.family(
        "gossamer_requests_total",
        "counter",
        "Logical requests (retries not counted again), by status code.",
    )
    for labels, by_code in sorted(codes.items()):
        base = _labels(tuple(zip(names, labels, strict=True)))
        for status, n in sorted(by_code.items()):
            out.sample("gossamer_requests_total", f'{base},code="{status}"', n)
    out.family(
        "gossamer_request_duration_seconds",
        "histogram",
        "Time from the request head to the end of the response, per logical request.",
    )
    for labels, (counts, total) in sorted(hists.items()):
        base = _labels(tuple(zip(names, labels, strict=True)))
        cumulative = 0
        for le, n in zip(_LE, counts, strict=True):
            cumulative += n
            out.sample("gossamer_request_duration_seconds_bucket", f'{base},le="{le}"', cumulative)
        out.sample("gossamer_request_duration_seconds_sum", base, total[0])
        out.sample("gossamer_request_duration_seconds_count", base, cumulative)
