"""Pure summaries: medians, percentiles and gossamer-to-peer ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    if math.isnan(numerator) or math.isnan(denominator):
        return None
    return numerator / denominator


def ratios_to_peers(
    rows: Sequence[dict[str, object]], metric: str, subject: str = "gossamer"
) -> list[dict[str, object]]:
    """For each (path, body), `subject`'s metric divided by every other proxy's in that group.

    The path "direct" has no proxy; the subject is compared to it within the same body size
    (gossamer mesh / direct says what the whole mesh path costs over no mesh at all).
    """
    out: list[dict[str, object]] = []
    groups = {(r["path"], r["body"]) for r in rows if r["proxy"] == subject}
    for path, body in sorted(groups, key=str):
        mine = _value(rows, subject, path, body, metric)
        others = [r for r in rows if r["body"] == body and r["proxy"] != subject]
        for other in others:
            if other["path"] not in (path, "direct"):
                continue
            theirs = _value(rows, str(other["proxy"]), str(other["path"]), body, metric)
            out.append(
                {
                    "path": path,
                    "body": body,
                    "metric": metric,
                    "versus": other["proxy"],
                    "ratio": ratio(mine, theirs),
                }
            )
    return out


def _value(
    rows: Sequence[dict[str, object]], proxy: str, path: object, body: object, metric: str
) -> float | None:
    for row in rows:
        if row["proxy"] == proxy and row["path"] == path and row["body"] == body:
            value = row.get(metric)
            return float(value) if isinstance(value, int | float) else None
    return None
