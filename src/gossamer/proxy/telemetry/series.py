"""Per-series request counters: one small object per (direction, source, destination, route,
subset, mTLS) seen, updated in place by each finished request.

Every label comes from the snapshot (service keys, route names, endpoint labels) or from a
verified peer identity, never from request bytes, so the number of series is bounded by the
mesh's configuration. Paths (for `gossamer top`) are kept apart, bounded per series and
interval, and never become Prometheus labels.
"""

from __future__ import annotations

from gossamer.wire import SLOTS  # shared with the other side of the protocol

MAX_PATHS = 200  # distinct paths remembered per series between two reports
MAX_PATH_BYTES = 1024

# (direction, src service key or "", dst service key or "", route name, rule, subset
# version, mtls). `rule` is -1 for "no route" (the service's default backend).
SeriesKey = tuple[str, str, str, str, int, str, bool]


class Series:
    """Cumulative since start (Prometheus reads them; the reporter diffs them)."""

    __slots__ = ("codes", "counts", "paths", "total")

    def __init__(self) -> None:
        self.codes: dict[int, int] = {}  # exact status (0: no response) -> count
        self.counts = [0] * SLOTS  # per bucket, not cumulative
        self.total = 0.0  # seconds, summed
        self.paths: dict[bytes, int] = {}  # since the last report only

    def add_path(self, path: bytes) -> None:
        paths = self.paths
        if path in paths:
            paths[path] += 1
        elif len(paths) < MAX_PATHS:
            paths[path] = 1


def route_label(route: str, rule: int) -> str:
    """`ns/name#rule`, or "" for the default route (docs/protocol.md)."""
    return f"{route}#{rule}" if route else ""


def status_class(status: int) -> str:
    return _CLASSES[status // 100] if 100 <= status < 600 else "none"


_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


def source_service(identity: object) -> str:
    """The caller's service key from its verified identity, or "" when unknown.

    Accepts a SPIFFE ID string (`spiffe://domain/ns/NS/sa/NAME`) or an object carrying one
    in `spiffe_id`; anything else is unknown (never a label made from request bytes).
    """
    spiffe = identity if isinstance(identity, str) else getattr(identity, "spiffe_id", None)
    if not isinstance(spiffe, str) or not spiffe.startswith("spiffe://"):
        return ""
    parts = spiffe[len("spiffe://") :].split("/")
    if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa" and parts[2] and parts[4]:
        return f"{parts[2]}/{parts[4]}"
    return ""
