"""Validating a proxy's telemetry report (docs/protocol.md, "Telemetry from proxies").

Pure: a JSON body in, a Report or a ReportError naming the field out. Every label value is
bounded in length and every list in size, so one report costs bounded memory and time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from gossamer.control.telemetry.histogram import BUCKETS, SLOTS

MAX_SERIES_PER_REPORT = 2000
MAX_PATHS_PER_SERIES = 20
MAX_LABEL_CHARS = 256
MAX_PATH_CHARS = 1024
DIRECTIONS = ("outbound", "inbound")
CODE_CLASSES = frozenset({"1xx", "2xx", "3xx", "4xx", "5xx", "none"})
_SERVICE_KEY = re.compile(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
)


class ReportError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# (direction, src, dst, route, subset, mtls): every label is bounded, none is user input.
SeriesKey = tuple[str, str, str, str, str, bool]


@dataclass(frozen=True, slots=True)
class SeriesReport:
    key: SeriesKey
    codes: dict[str, int]
    counts: list[int]
    total_seconds: float
    paths: dict[str, int]

    @property
    def requests(self) -> int:
        return sum(self.codes.values())


@dataclass(frozen=True, slots=True)
class Report:
    start: float
    end: float
    series: list[SeriesReport]


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportError(field, f"must be a non-negative integer, got {value!r}")
    return value


def _label(value: Any, field: str, *, service: bool = False, optional: bool = False) -> str:
    if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS:
        raise ReportError(field, f"must be a string of at most {MAX_LABEL_CHARS} characters")
    if service and not (optional and value == "") and not _SERVICE_KEY.match(value):
        raise ReportError(field, f"must be 'namespace/name', got {value!r}")
    return value


def _series(raw: Any, at: str) -> SeriesReport:
    if not isinstance(raw, dict):
        raise ReportError(at, "must be an object")
    direction = raw.get("direction")
    if direction not in DIRECTIONS:
        raise ReportError(f"{at}.direction", f"must be one of {', '.join(DIRECTIONS)}")
    mtls = raw.get("mtls", False)
    if not isinstance(mtls, bool):
        raise ReportError(f"{at}.mtls", "must be true or false")
    key: SeriesKey = (
        direction,
        _label(raw.get("src", ""), f"{at}.src", service=True, optional=True),
        _label(raw.get("dst"), f"{at}.dst", service=True),
        _label(raw.get("route", ""), f"{at}.route"),
        _label(raw.get("subset", ""), f"{at}.subset"),
        mtls,
    )
    codes_raw = raw.get("codes")
    if not isinstance(codes_raw, dict):
        raise ReportError(f"{at}.codes", "must be an object of status class to count")
    codes: dict[str, int] = {}
    for code, n in codes_raw.items():
        if code not in CODE_CLASSES:
            raise ReportError(f"{at}.codes", f"unknown class {code!r}; allowed: 1xx..5xx, none")
        codes[code] = _count(n, f"{at}.codes.{code}")
    counts_raw = raw.get("counts")
    if not isinstance(counts_raw, list) or len(counts_raw) != SLOTS:
        raise ReportError(f"{at}.counts", f"must be a list of {SLOTS} counts (buckets, then +Inf)")
    counts = [_count(n, f"{at}.counts[{i}]") for i, n in enumerate(counts_raw)]
    if sum(counts) != sum(codes.values()):
        raise ReportError(f"{at}.counts", "histogram total differs from the sum of codes")
    total = raw.get("sum", 0.0)
    if isinstance(total, bool) or not isinstance(total, int | float) or not math.isfinite(total):
        raise ReportError(f"{at}.sum", "must be a finite number of seconds")
    paths_raw = raw.get("paths", {})
    if not isinstance(paths_raw, dict) or len(paths_raw) > MAX_PATHS_PER_SERIES:
        raise ReportError(
            f"{at}.paths", f"must be an object of at most {MAX_PATHS_PER_SERIES} paths"
        )
    paths: dict[str, int] = {}
    for path, n in paths_raw.items():
        count = _count(n, f"{at}.paths")
        if len(path) <= MAX_PATH_CHARS:  # an absurd path is left out of `top`, not fatal
            paths[path] = count
    return SeriesReport(key, codes, counts, max(0.0, float(total)), paths)


def parse_report(body: dict[str, Any]) -> Report:
    interval = body.get("interval")
    if (
        not isinstance(interval, list)
        or len(interval) != 2
        or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in interval)
        or not all(math.isfinite(t) for t in interval)
        or interval[0] > interval[1]
    ):
        raise ReportError("interval", "must be [start, end] in Unix seconds with start <= end")
    buckets = body.get("buckets")
    if not isinstance(buckets, list) or [float(b) for b in buckets if _number(b)] != list(BUCKETS):
        raise ReportError("buckets", f"must be the shared boundaries {list(BUCKETS)}")
    raw = body.get("series")
    if not isinstance(raw, list) or len(raw) > MAX_SERIES_PER_REPORT:
        raise ReportError("series", f"must be a list of at most {MAX_SERIES_PER_REPORT} series")
    series = [_series(item, f"series[{i}]") for i, item in enumerate(raw)]
    return Report(float(interval[0]), float(interval[1]), series)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
