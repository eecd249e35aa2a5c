"""Resilience decisions: retry budget, backoff, retriability, outlier ejection, limits.

Pure and sans-IO: time comes in as ``now`` (seconds, any monotonic origin) and randomness
as a number in [0, 1), so every decision is reproducible in tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol

# Requests whose bodies are larger than this are never retried: we would have to buffer them.
MAX_RETRY_BODY = 64 * 1024
IDEMPOTENT_METHODS = frozenset(
    {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
    | {b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"}
)
DEFAULT_RETRY_CODES = frozenset({502, 503, 504})


def is_retriable(
    method: str | bytes,
    status: int | None,
    proven_unsent: bool,
    body_size: int | None,
    codes: Iterable[int] = DEFAULT_RETRY_CODES,
) -> bool:
    """Whether a failed attempt may be retried.

    ``status`` is the response status, or None when the attempt failed without a response
    (connect failure, reset). ``proven_unsent``: no byte of the request reached the upstream
    (e.g. connect refused), so even a POST is safe to resend. ``body_size`` None means the
    body was streamed and not kept, so it cannot be replayed.
    """
    if body_size is None or body_size > MAX_RETRY_BODY:
        return False
    if proven_unsent:
        return True
    if method not in IDEMPOTENT_METHODS:
        return False
    return status is None or status in codes


def backoff(attempt: int, base: float, cap: float, rand: float) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential with full jitter.

    ``rand`` in [0, 1); full jitter spreads retries of many clients evenly over the window
    (AWS architecture blog, "Exponential Backoff And Jitter").
    """
    if attempt < 1 or base <= 0:
        return 0.0
    # Cap the exponent too, so a huge attempt number cannot overflow the float.
    window = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return rand * window


class RetryBudget:
    """Linkerd's retry budget: retries may add ``percent`` % of requests on top, plus
    ``min_per_second`` retries per second, both over a sliding window of ``interval`` s.

    The window is kept in ten buckets so old traffic ages out smoothly.
    """

    __slots__ = (
        "_bucket_width",
        "_numbers",
        "_requests",
        "_retries",
        "interval",
        "min_per_second",
        "ratio",
    )

    _SLOTS = 10

    def __init__(
        self, percent: float = 20, min_per_second: float = 10, interval: float = 10.0
    ) -> None:
        if interval <= 0:
            raise ValueError(f"retry budget interval must be > 0 seconds, got {interval}")
        self.ratio = percent / 100.0
        self.min_per_second = min_per_second
        self.interval = interval
        self._bucket_width = interval / self._SLOTS
        # Ring of buckets: which bucket number each slot holds, and its counts.
        self._numbers = [-1] * self._SLOTS
        self._requests = [0] * self._SLOTS
        self._retries = [0] * self._SLOTS

    def _slot(self, now: float) -> int:
        number = math.floor(now / self._bucket_width)
        slot = number % self._SLOTS
        if self._numbers[slot] != number:
            self._numbers[slot] = number
            self._requests[slot] = 0
            self._retries[slot] = 0
        return slot

    def _totals(self, now: float) -> tuple[int, int]:
        oldest = math.floor(now / self._bucket_width) - self._SLOTS + 1
        requests = retries = 0
        for slot, number in enumerate(self._numbers):
            if number >= oldest:
                requests += self._requests[slot]
                retries += self._retries[slot]
        return requests, retries

    def record_request(self, now: float) -> None:
        """Count an original request (not a retry): it deposits into the budget."""
        self._requests[self._slot(now)] += 1

    def try_withdraw(self, now: float) -> bool:
        """Take one retry from the budget; False when the budget is spent."""
        requests, retries = self._totals(now)
        allowed = self.ratio * requests + self.min_per_second * self.interval
        if retries + 1 > allowed:
            return False
        self._retries[self._slot(now)] += 1
        return True


class OutlierState:
    """Per-endpoint outlier bookkeeping; lives on the endpoint so it survives snapshots."""

    __slots__ = ("calm_since", "ejected_until", "ejections", "failures")

    def __init__(self) -> None:
        self.failures = 0  # consecutive failures (5xx or connect failure)
        self.ejected_until = -math.inf
        self.ejections = 0  # how many times ejected recently: the backoff exponent
        self.calm_since = -math.inf  # last time the ejection exponent was lowered


class HasOutlierState(Protocol):
    outlier: OutlierState


class OutlierDetector:
    """Consecutive-failure ejection (Envoy's consecutive_5xx / gateway_failure).

    After ``consecutive`` failures in a row an endpoint is ejected for
    ``base_ejection * 2^(n-1)`` seconds (n: its recent ejection count), at most
    ``max_ejection``. Each ``base_ejection`` seconds of good behaviour after an ejection
    lowers n by one.

    Share cap: an ejection is allowed while ejected + 1 ≤ ``max_percent`` % of the
    population. When that rounds down to zero it still allows one ejection if
    ``max_percent`` > 0 and at least two endpoints exist, so small backends (2 or 3 endpoints)
    can shed a bad one; a lone endpoint is never ejected unless ``max_percent`` is 100
    (ejecting it would only turn slow failures into fast 503s and hide recovery).
    """

    __slots__ = ("base_ejection", "consecutive", "endpoints", "max_ejection", "max_percent")

    def __init__(
        self,
        consecutive: int = 5,
        base_ejection: float = 30.0,
        max_percent: int = 50,
        max_ejection: float = 300.0,
        endpoints: Sequence[HasOutlierState] = (),
    ) -> None:
        self.consecutive = max(1, consecutive)
        self.base_ejection = base_ejection
        self.max_percent = max_percent
        self.max_ejection = max(max_ejection, base_ejection)
        self.endpoints = endpoints  # the population the share cap counts against

    def is_ejected(self, ep: HasOutlierState, now: float) -> bool:
        return ep.outlier.ejected_until > now

    def ejected_count(self, now: float) -> int:
        return sum(1 for ep in self.endpoints if ep.outlier.ejected_until > now)

    def _may_eject(self, now: float) -> bool:
        total = len(self.endpoints)
        if self.max_percent <= 0 or total == 0:
            return False
        if self.max_percent >= 100:
            return True
        ejected = self.ejected_count(now)
        if (ejected + 1) * 100 <= self.max_percent * total:
            return True
        return ejected == 0 and total >= 2

    def record(self, ep: HasOutlierState, now: float, ok: bool) -> bool:
        """Record one outcome; returns True when this outcome ejected the endpoint."""
        state = ep.outlier
        if ok:
            state.failures = 0
            if state.ejections and now >= state.ejected_until:
                calm_from = max(state.ejected_until, state.calm_since)
                if now - calm_from >= self.base_ejection:
                    state.ejections -= 1
                    state.calm_since = now
            return False
        if state.ejected_until > now:
            return False  # stragglers in flight when it was ejected say nothing new
        state.failures += 1
        if state.failures < self.consecutive:
            return False
        if not self._may_eject(now):
            return False
        state.ejections += 1
        duration = self.base_ejection * 2.0 ** min(state.ejections - 1, 30)
        state.ejected_until = now + min(duration, self.max_ejection)
        state.calm_since = state.ejected_until
        state.failures = 0
        return True


class Limits:
    """Circuit-breaker counters (Envoy's max_connections / pending / requests).

    ``try_acquire_*`` returns False on overflow (answer 503 ``overflow``) and counts it;
    every successful acquire must be paired with its release.
    """

    __slots__ = (
        "active_requests",
        "connections",
        "max_connections",
        "max_pending",
        "max_requests",
        "overflows",
        "pending",
    )

    def __init__(
        self, max_connections: int = 1024, max_pending: int = 1024, max_requests: int = 1024
    ) -> None:
        self.max_connections = max_connections
        self.max_pending = max_pending
        self.max_requests = max_requests
        self.connections = 0
        self.pending = 0
        self.active_requests = 0
        self.overflows = 0

    def reconfigure(self, max_connections: int, max_pending: int, max_requests: int) -> None:
        """Change the maxima in place so counts of in-flight work carry over."""
        self.max_connections = max_connections
        self.max_pending = max_pending
        self.max_requests = max_requests

    def try_acquire_connection(self) -> bool:
        if self.connections >= self.max_connections:
            self.overflows += 1
            return False
        self.connections += 1
        return True

    def release_connection(self) -> None:
        if self.connections > 0:
            self.connections -= 1

    def try_acquire_pending(self) -> bool:
        """A request waiting for a connection from the pool."""
        if self.pending >= self.max_pending:
            self.overflows += 1
            return False
        self.pending += 1
        return True

    def release_pending(self) -> None:
        if self.pending > 0:
            self.pending -= 1

    def try_acquire_request(self) -> bool:
        if self.active_requests >= self.max_requests:
            self.overflows += 1
            return False
        self.active_requests += 1
        return True

    def release_request(self) -> None:
        if self.active_requests > 0:
            self.active_requests -= 1
