"""Load balancers: pick an endpoint of a backend. Pure; time and randomness passed in.

Per-endpoint load (in-flight count and peak-EWMA latency) lives on the endpoint itself
(``ep.load``), so it is shared by every subset containing the endpoint and survives
snapshot updates. Ejected endpoints (``ep.outlier.ejected_until > now``) are skipped.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Sequence
from hashlib import blake2b
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gossamer.proxy.snapshot import Endpoint, LbPolicy

Rand = Callable[[], float]
# Finagle's penalty for an endpoint with requests in flight but no latency yet: large
# enough that a proven endpoint is preferred, finite so it still gets picked when alone.
_PENALTY = 1e6


class EndpointLoad:
    """In-flight requests and a peak-EWMA latency estimate (seconds) for one endpoint."""

    __slots__ = ("cost", "pending", "stamp")

    def __init__(self) -> None:
        self.pending = 0
        self.cost = -1.0  # < 0: never observed, the balancer's default RTT stands in
        self.stamp = 0.0


class Balancer(Protocol):
    endpoints: tuple[Endpoint, ...]

    def pick(self, now: float, hash_key: bytes | None = None) -> Endpoint | None: ...
    def start(self, ep: Endpoint, now: float) -> None: ...
    def finish(self, ep: Endpoint, now: float, rtt: float, ok: bool) -> None: ...


class _Base:
    __slots__ = ("endpoints", "rand")

    def __init__(self, endpoints: Sequence[Endpoint], rand: Rand | None = None) -> None:
        self.endpoints = tuple(endpoints)
        self.rand = rand or random.random

    def _available(self, now: float) -> list[Endpoint]:
        return [ep for ep in self.endpoints if ep.outlier.ejected_until <= now]

    def start(self, ep: Endpoint, now: float) -> None:
        ep.load.pending += 1

    def finish(self, ep: Endpoint, now: float, rtt: float, ok: bool) -> None:
        if ep.load.pending > 0:
            ep.load.pending -= 1

    def _two_choices(self, now: float) -> tuple[Endpoint, Endpoint] | Endpoint | None:
        """Two distinct random non-ejected endpoints, or the only one, or None."""
        eps = self.endpoints
        n = len(eps)
        if n >= 2:
            rand = self.rand
            i = int(rand() * n)
            j = int(rand() * (n - 1))
            if j >= i:
                j += 1
            a, b = eps[i], eps[j]
            if a.outlier.ejected_until <= now and b.outlier.ejected_until <= now:
                return a, b
        elif n == 1:  # a single instance (common for small services): no list to build
            only = eps[0]
            return only if only.outlier.ejected_until <= now else None
        # Slow path: some endpoints are ejected (rare), or fewer than two exist.
        live = self._available(now)
        if len(live) >= 2:
            i = int(self.rand() * len(live))
            j = int(self.rand() * (len(live) - 1))
            if j >= i:
                j += 1
            return live[i], live[j]
        return live[0] if live else None


class PeakEwmaBalancer(_Base):
    """Power of two choices over peak-EWMA latency * (in-flight + 1), as in linkerd2-proxy
    and Finagle. A slow response raises the estimate at once (peak); fast ones pull it down
    with time constant ``decay``; an idle estimate decays toward zero so a once-slow
    endpoint gets probed again.
    """

    __slots__ = ("decay", "default_rtt")

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        default_rtt: float = 0.03,
        decay: float = 10.0,
        rand: Rand | None = None,
    ) -> None:
        super().__init__(endpoints, rand)
        self.default_rtt = default_rtt
        self.decay = decay

    def load_of(self, ep: Endpoint, now: float) -> float:
        load = ep.load
        if load.cost < 0:
            cost = self.default_rtt
        else:
            cost = load.cost * math.exp(-max(now - load.stamp, 0.0) / self.decay)
        if cost == 0.0 and load.pending:
            return _PENALTY + load.pending
        return cost * (load.pending + 1)

    def pick(self, now: float, hash_key: bytes | None = None) -> Endpoint | None:
        choice = self._two_choices(now)
        if not isinstance(choice, tuple):
            return choice
        a, b = choice
        return a if self.load_of(a, now) <= self.load_of(b, now) else b

    def finish(self, ep: Endpoint, now: float, rtt: float, ok: bool) -> None:
        load = ep.load
        if load.pending > 0:
            load.pending -= 1
        # A fast failure (connection refused) must not make an endpoint look attractive.
        if not ok and rtt < self.default_rtt:
            rtt = self.default_rtt
        if load.cost < 0 or rtt > load.cost:
            load.cost = rtt
        else:
            w = math.exp(-max(now - load.stamp, 0.0) / self.decay)
            load.cost = load.cost * w + rtt * (1.0 - w)
        load.stamp = now


class LeastRequestBalancer(_Base):
    """Power of two choices on in-flight requests (Envoy's LEAST_REQUEST)."""

    __slots__ = ()

    def pick(self, now: float, hash_key: bytes | None = None) -> Endpoint | None:
        choice = self._two_choices(now)
        if not isinstance(choice, tuple):
            return choice
        a, b = choice
        return a if a.load.pending <= b.load.pending else b


class RoundRobinBalancer(_Base):
    __slots__ = ("_next",)

    def __init__(self, endpoints: Sequence[Endpoint], rand: Rand | None = None) -> None:
        super().__init__(endpoints, rand)
        # Start at a random place so many sidecars do not all hit endpoint 0 first.
        self._next = int(self.rand() * len(self.endpoints)) if self.endpoints else 0

    def pick(self, now: float, hash_key: bytes | None = None) -> Endpoint | None:
        eps = self.endpoints
        n = len(eps)
        for _ in range(n):
            ep = eps[self._next % n]
            self._next = (self._next + 1) % n
            if ep.outlier.ejected_until <= now:
                return ep
        return None


def hash64(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


class ConsistentHashBalancer(_Base):
    """Ketama-style hash ring keyed by endpoint id: when an endpoint leaves, only its keys
    move. Requests without a key fall back to power of two choices on in-flight requests.
    Ejected endpoints are skipped by walking clockwise to the next live one.
    """

    __slots__ = ("_owners", "_points", "vnodes")

    def __init__(
        self, endpoints: Sequence[Endpoint], vnodes: int = 160, rand: Rand | None = None
    ) -> None:
        super().__init__(endpoints, rand)
        self.vnodes = vnodes
        self._points: list[int] = []
        self._owners: list[Endpoint] = []

    def _build(self) -> None:
        # Built on first use: subsets that never see traffic cost nothing.
        ring = sorted(
            (hash64(f"{ep.id}#{v}".encode()), ep.id, i)
            for i, ep in enumerate(self.endpoints)
            for v in range(self.vnodes)
        )
        self._points = [point for point, _, _ in ring]
        self._owners = [self.endpoints[i] for _, _, i in ring]

    def pick(self, now: float, hash_key: bytes | None = None) -> Endpoint | None:
        if hash_key is None:
            choice = self._two_choices(now)
            if not isinstance(choice, tuple):
                return choice
            a, b = choice
            return a if a.load.pending <= b.load.pending else b
        if not self.endpoints:
            return None
        if not self._points:
            self._build()
        points, owners = self._points, self._owners
        size = len(points)
        start = bisect.bisect_left(points, hash64(hash_key))
        for step in range(size):
            ep = owners[(start + step) % size]
            if ep.outlier.ejected_until <= now:
                return ep
        return None


def make_balancer(
    policy_lb: LbPolicy | None, endpoints: Sequence[Endpoint], rand: Rand | None = None
) -> Balancer:
    """The balancer named by a service's ``policy.lb`` (P2C over peak EWMA by default)."""
    kind = policy_lb.type if policy_lb is not None else "P2CPeakEWMA"
    if kind == "RoundRobin":
        return RoundRobinBalancer(endpoints, rand)
    if kind == "LeastRequest":
        return LeastRequestBalancer(endpoints, rand)
    if kind == "ConsistentHash":
        return ConsistentHashBalancer(endpoints, rand=rand)
    if policy_lb is None:
        return PeakEwmaBalancer(endpoints, rand=rand)
    return PeakEwmaBalancer(endpoints, policy_lb.default_rtt, policy_lb.decay, rand)


def hash_key_from_headers(
    policy_lb: LbPolicy, headers: Sequence[tuple[bytes, bytes]]
) -> bytes | None:
    """The ConsistentHash key of a request: its ``hashOn`` header or cookie value, if any."""
    if policy_lb.hash_header is not None:
        name = policy_lb.hash_header
        for key, value in headers:
            if key == name:
                return value
        return None
    cookie = policy_lb.hash_cookie
    if cookie is None:
        return None
    prefix = cookie + b"="
    for key, value in headers:
        if key == b"cookie":
            for part in value.split(b";"):
                part = part.strip()
                if part.startswith(prefix):
                    return part[len(prefix) :]
    return None
