"""Live request summaries for `GET /tap` on the stats listener (docs/protocol.md, "Tap").

A tap exists only while its client is connected; `Stats.taps` is empty otherwise, so the
hot path pays one `if`. Each tap filters, then spends from a token bucket (100 lines per
second) before it builds anything. Summaries never carry bodies or headers (so never
`authorization`, `cookie`, `set-cookie` or `proxy-authorization`), nor the query string.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gossamer.proxy.telemetry.series import SeriesKey, route_label

if TYPE_CHECKING:
    from gossamer.proxy.http.exchange import Exchange
    from gossamer.proxy.http.server import ClientConnection
    from gossamer.proxy.telemetry.stats import Stats

RATE_PER_SECOND = 100.0
MAX_TAPS = 16  # concurrent taps per sidecar
_STATUS = re.compile(r"^[1-5](xx|[0-9]{2})$")
_METHOD = re.compile(r"^[A-Z]{1,20}$")


class TapQueryError(ValueError):
    pass


class TapFilter:
    __slots__ = ("method", "path", "status_class", "status_code")

    def __init__(
        self, path: bytes = b"", method: bytes = b"", status_class: int = 0, status_code: int = 0
    ) -> None:
        self.path = path  # a prefix of the request path
        self.method = method
        self.status_class = status_class  # 5 for "5xx"
        self.status_code = status_code

    def matches(self, method: bytes, path: bytes, status: int) -> bool:
        if self.method and method != self.method:
            return False
        if self.path and not path.startswith(self.path):
            return False
        if self.status_code and status != self.status_code:
            return False
        return not self.status_class or status // 100 == self.status_class


def parse_query(query: Mapping[str, str]) -> TapFilter:
    """`path` (prefix starting with "/"), `method` (GET), `status` (5xx or 503)."""
    unknown = set(query) - {"path", "method", "status"}
    if unknown:
        raise TapQueryError(
            f"unknown tap parameter {sorted(unknown)[0]!r}; use path, method, status"
        )
    path, method, status = query.get("path", ""), query.get("method", ""), query.get("status", "")
    if path and (not path.startswith("/") or len(path) > 1024):
        raise TapQueryError("path: a prefix starting with '/', at most 1024 characters")
    if method and not _METHOD.match(method.upper()):
        raise TapQueryError("method: an HTTP method like GET")
    if status and not _STATUS.match(status):
        raise TapQueryError("status: a class like 5xx or a code like 503")
    status_class = int(status[0]) if status.endswith("xx") else 0
    status_code = int(status) if status and not status_class else 0
    return TapFilter(
        path.encode("latin-1", "replace"), method.upper().encode(), status_class, status_code
    )


LOCKED = ""  # a credential no bearer matches: the tap secret is not known yet


def tap_credential(mesh: Mapping[str, Any] | None) -> str | None:
    """The bearer `/tap` wants, from the snapshot's mesh section: the control plane's tap
    secret; LOCKED before the first snapshot, or when the mesh runs a CA but sent no
    secret (fail closed); None (open) only when the control plane runs no security."""
    if mesh is None:
        return LOCKED
    secret = mesh.get("tapSecret")
    if isinstance(secret, str) and secret:
        return secret
    return LOCKED if "trustDomain" in mesh else None


def without_tap_secret(wire: dict[str, Any] | None) -> dict[str, Any] | None:
    """The snapshot as the admin `/config` shows it: the tap secret left out."""
    if wire is None or "tapSecret" not in (wire.get("mesh") or {}):
        return wire
    mesh = {k: v for k, v in wire["mesh"].items() if k != "tapSecret"}
    return {**wire, "mesh": {**mesh, "tapSecret": "<redacted>"}}


def tap_allowed(authorization: bytes | None, credential: str | None) -> bool:
    """The one check every tap passes: the credential as a bearer token, compared in
    constant time. None: open; LOCKED: refused."""
    if credential is None:
        return True
    if not credential:
        return False
    expected = b"Bearer " + credential.encode()
    return authorization is not None and hmac.compare_digest(authorization.strip(), expected)


class TokenBucket:
    """At most `rate` per second on average, bursts up to `rate`. Pure: `now` passed in."""

    __slots__ = ("last", "rate", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = now

    def take(self, now: float) -> bool:
        tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


def summary(conn: ClientConnection, ex: Exchange, key: SeriesKey, now: float) -> dict[str, object]:
    direction, src, dst, route, rule, subset, mtls = key
    path = ex.upstream_target.partition(b"?")[0]
    address, port = ex.key
    return {
        "time": round(time.time(), 6),
        "direction": direction,
        "method": ex.head.method.decode("latin-1"),
        "authority": ex.head.host.decode("latin-1"),
        "path": path.decode("latin-1"),
        "status": ex.status,
        "reason": ex.reason,
        "durationMs": round((now - ex.measured_from) * 1000, 3),
        "src": src,
        "dst": dst,
        "route": route_label(route, rule),
        "subset": f"version={subset}" if subset else "",
        "mtls": mtls,
        "upstream": f"{address}:{port}" if address else "",
        "attempts": ex.attempt,
        "requestId": ex.head.request_id.decode("latin-1"),
        "bytesIn": ex.body_size,
        "bytesOut": ex.response_bytes,
    }


class Tap:
    """One connected tap client: `send` writes one NDJSON line, False when it cannot keep up."""

    __slots__ = ("bucket", "filter", "send", "sent", "stats")

    def __init__(
        self, stats: Stats, flt: TapFilter, send: Callable[[bytes], bool], now: float
    ) -> None:
        self.stats = stats
        self.filter = flt
        self.send = send
        self.bucket = TokenBucket(RATE_PER_SECOND, now)
        self.sent = 0

    def offer(self, conn: ClientConnection, ex: Exchange, key: SeriesKey, now: float) -> None:
        head = ex.head
        if not self.filter.matches(head.method, ex.upstream_target, ex.status):
            return
        if not self.bucket.take(now):
            self.stats.drop("tap")
            return
        line = json.dumps(summary(conn, ex, key, now), separators=(",", ":")).encode() + b"\n"
        if self.send(line):
            self.sent += 1
        else:
            self.stats.drop("tap")

    def open(self) -> bool:
        """Start receiving summaries; False when the sidecar already serves MAX_TAPS."""
        if len(self.stats.taps) >= MAX_TAPS:
            return False
        self.stats.taps = [*self.stats.taps, self]  # copy on write: safe mid-iteration
        return True

    def close(self) -> None:
        self.stats.taps = [tap for tap in self.stats.taps if tap is not self]
