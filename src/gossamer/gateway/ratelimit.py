"""Token buckets per (policy, limit, client key), each replica holding its share. Pure.

Across replicas: the control plane tells every replica how many replicas are live
(`replicas`); each enforces `requests / replicas` per period with a burst of
`burst / replicas` (rounded up, at least 1). With clients spread evenly over the
replicas (a load balancer's round robin) the admitted total stays within one burst
share per replica of the configured limit; a client pinned to one replica gets its
share only (the limit errs on the strict side, never the loose one).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

MAX_BUCKETS = 100_000  # per limit; the least recently used are forgotten beyond it


@dataclass(frozen=True, slots=True)
class LimitSpec:
    requests: int
    period: float  # seconds
    burst: int
    key_type: str  # ClientIP | Header | Claim | None
    key_name: str  # lower-cased header name or claim name
    trusted_proxies: int


@dataclass(slots=True)
class Verdict:
    allowed: bool
    limit: int  # RateLimit-Limit: requests per period (this replica's share)
    remaining: int
    reset: float  # seconds until the bucket is full again
    retry_after: float  # seconds until one request would pass (0 when allowed)


class Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class Limiter:
    """One limit's buckets at one replica share."""

    def __init__(self, spec: LimitSpec, replicas: int) -> None:
        self.spec = spec
        share = max(1, replicas)
        self.rate = spec.requests / spec.period / share  # tokens per second
        self.capacity = max(1, math.ceil(spec.burst / share))
        self.limit = max(1, math.ceil(spec.requests / share))
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str, now: float) -> Verdict:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(float(self.capacity), now)
            if len(self.buckets) > MAX_BUCKETS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.rate)
            bucket.stamp = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        missing = self.capacity - bucket.tokens
        reset = missing / self.rate if self.rate > 0 else math.inf
        retry = 0.0 if allowed else (1.0 - bucket.tokens) / self.rate
        return Verdict(allowed, self.limit, int(bucket.tokens), reset, retry)


def client_ip(peer_ip: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The client address: the peer, or with N trusted proxies in front of us the N-th
    address from the right of X-Forwarded-For (what the nearest trusted proxy saw)."""
    if trusted_proxies <= 0 or not forwarded_for:
        return peer_ip
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    if len(hops) < trusted_proxies:
        return hops[0] if hops else peer_ip
    return hops[-trusted_proxies]


def headers_for(verdict: Verdict) -> bytes:
    """RateLimit-* header lines (draft-ietf-httpapi-ratelimit-headers) plus Retry-After."""
    lines = b"ratelimit-limit: %d\r\nratelimit-remaining: %d\r\nratelimit-reset: %d\r\n" % (
        verdict.limit,
        verdict.remaining,
        math.ceil(verdict.reset),
    )
    if not verdict.allowed:
        lines += b"retry-after: %d\r\n" % max(1, math.ceil(verdict.retry_after))
    return lines
