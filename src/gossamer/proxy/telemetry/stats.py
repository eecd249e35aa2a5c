"""Lean counters for the hot path: plain ints and dicts keyed by small tuples.

No prometheus_client: incrementing is a dict update; rendering happens on scrape.
"""

from __future__ import annotations

DIRECTIONS = ("outbound", "inbound")


class Stats:
    def __init__(self) -> None:
        # (direction, status class like "2xx", reason or "") -> count
        self.requests: dict[tuple[str, str, str], int] = {}
        self.connections_total: dict[str, int] = dict.fromkeys(DIRECTIONS, 0)
        self.connections_active: dict[str, int] = dict.fromkeys(DIRECTIONS, 0)
        self.upstream_connections_active = 0
        self.upstream_attempts = 0
        self.retries = 0
        self.ejections = 0
        self.overflows = 0
        self.request_bytes = 0
        self.response_bytes = 0

    def request_done(
        self, direction: str, status: int, reason: str = "", req_bytes: int = 0, resp_bytes: int = 0
    ) -> None:
        key = (direction, _STATUS_CLASS[status // 100] if 0 < status < 600 else "none", reason)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        self.request_bytes += req_bytes
        self.response_bytes += resp_bytes
        if reason == "overflow":
            self.overflows += 1

    def connection_opened(self, direction: str) -> None:
        self.connections_total[direction] = self.connections_total.get(direction, 0) + 1
        self.connections_active[direction] = self.connections_active.get(direction, 0) + 1

    def connection_closed(self, direction: str) -> None:
        self.connections_active[direction] = self.connections_active.get(direction, 0) - 1

    def upstream_connection(self, delta: int) -> None:
        self.upstream_connections_active += delta

    def render_prometheus(self) -> bytes:
        return render_prometheus(self)


_STATUS_CLASS = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(stats: Stats) -> bytes:
    """Prometheus text exposition (format 0.0.4) of every counter."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family(
        "gossamer_requests_total",
        "counter",
        "Requests answered, by direction, status class and reason.",
    )
    for (direction, status_class, reason), count in sorted(stats.requests.items()):
        lines.append(
            f'gossamer_requests_total{{direction="{_escape(direction)}",status_class="{status_class}",'
            f'reason="{_escape(reason)}"}} {count}'
        )
    family("gossamer_connections_total", "counter", "Client connections accepted.")
    for direction, count in sorted(stats.connections_total.items()):
        lines.append(f'gossamer_connections_total{{direction="{direction}"}} {count}')
    family("gossamer_connections_active", "gauge", "Client connections open now.")
    for direction, count in sorted(stats.connections_active.items()):
        lines.append(f'gossamer_connections_active{{direction="{direction}"}} {count}')
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
        (
            "gossamer_request_body_bytes_total",
            "counter",
            "Request body bytes forwarded.",
            stats.request_bytes,
        ),
        (
            "gossamer_response_body_bytes_total",
            "counter",
            "Response body bytes forwarded.",
            stats.response_bytes,
        ),
    )
    for name, kind, help_text, value in singles:
        family(name, kind, help_text)
        lines.append(f"{name} {value}")
    lines.append("")
    return "\n".join(lines).encode()
