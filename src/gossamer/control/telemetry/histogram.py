"""Latency histograms shared by every proxy: merge by adding counts, percentiles by
interpolating inside the bucket that holds the rank (as Prometheus' histogram_quantile).

Percentiles are only ever computed from a merged histogram, never averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

from gossamer.wire import BUCKETS, SLOTS  # shared with the other side of the protocol


def empty_counts() -> list[int]:
    return [0] * SLOTS


def add_counts(into: list[int], counts: Sequence[int]) -> None:
    """Merge `counts` into `into` in place (same boundaries on both sides)."""
    for i, n in enumerate(counts):
        into[i] += n


def quantile(q: float, counts: Sequence[int], bounds: Sequence[float] = BUCKETS) -> float | None:
    """The q-quantile (0 < q <= 1) of a per-bucket (not cumulative) histogram, or None if empty.

    Linear interpolation inside the bucket holding rank q*total, from its lower bound (0 for
    the first bucket); ranks in the +Inf bucket answer the highest finite bound.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(bounds):
                return bounds[-1]
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * (rank - seen) / n
        seen += n
    return bounds[-1]


def bucket_of(seconds: float, bounds: Sequence[float] = BUCKETS) -> int:
    """Index of the bucket a latency falls in (upper bounds are inclusive, as `le`)."""
    for i, upper in enumerate(bounds):
        if seconds <= upper:
            return i
    return len(bounds)
