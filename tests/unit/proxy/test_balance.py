"""Balancers under simulated traffic in virtual time (a small discrete-event loop)."""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossamer.proxy.balance import (
    ConsistentHashBalancer,
    LeastRequestBalancer,
    PeakEwmaBalancer,
    RoundRobinBalancer,
    hash_key_from_headers,
    make_balancer,
)
from gossamer.proxy.snapshot import Endpoint, LbPolicy


def endpoints(n: int, prefix: str = "ep") -> list[Endpoint]:
    return [Endpoint(f"{prefix}-{i}", "10.0.0.1", 8000 + i, {}) for i in range(n)]


def simulate(
    balancer: PeakEwmaBalancer | LeastRequestBalancer,
    latency: Callable[[Endpoint, float], float],
    rate: float,
    duration: float,
    start: float = 0.0,
) -> Counter[str]:
    """Open-loop arrivals every 1/rate s; each request finishes after latency(ep, now)."""
    picks: Counter[str] = Counter()
    done: list[tuple[float, int, Endpoint, float]] = []
    now, seq = start, 0
    while now < start + duration:
        while done and done[0][0] <= now:
            t, _, ep, began = heapq.heappop(done)
            balancer.finish(ep, t, t - began, True)
        ep = balancer.pick(now)
        assert ep is not None
        balancer.start(ep, now)
        picks[ep.id] += 1
        seq += 1
        heapq.heappush(done, (now + latency(ep, now), seq, ep, now))
        now += 1.0 / rate
    for t, _, ep, began in sorted(done):
        balancer.finish(ep, t, t - began, True)
    return picks


def test_peak_ewma_sends_less_to_a_slow_endpoint() -> None:
    eps = endpoints(4)
    slow = eps[0]
    balancer = PeakEwmaBalancer(eps, rand=random.Random(1).random)
    picks = simulate(balancer, lambda ep, _: 0.25 if ep is slow else 0.01, 200, 20.0)
    total = sum(picks.values())
    share = picks[slow.id] / total
    print(f"peak-EWMA: slow endpoint share {share:.3f} of {total} (fair share 0.25)")
    assert share < 0.05
    for ep in eps[1:]:
        assert picks[ep.id] / total > 0.25  # the fast ones take up the slack


def test_peak_ewma_probes_a_recovered_endpoint_again() -> None:
    eps = endpoints(3)
    slow = eps[0]
    balancer = PeakEwmaBalancer(eps, decay=2.0, rand=random.Random(2).random)

    def latency(ep: Endpoint, now: float) -> float:
        return 0.3 if ep is slow and now < 10.0 else 0.01

    first = simulate(balancer, latency, 100, 10.0)
    simulate(balancer, latency, 100, 15.0, start=10.0)  # the old peak decays meanwhile
    later = simulate(balancer, latency, 100, 10.0, start=25.0)
    print(
        f"recovery: share before {first[slow.id] / 1000:.3f}, 15 s later {later[slow.id] / 1000:.3f}"
    )
    assert first[slow.id] < 60
    assert later[slow.id] / sum(later.values()) > 0.28


def test_peak_ewma_counts_in_flight_requests() -> None:
    a, b = endpoints(2)
    balancer = PeakEwmaBalancer([a, b], rand=random.Random(3).random)
    for ep in (a, b):
        balancer.start(ep, 0.0)
        balancer.finish(ep, 0.0, 0.02, True)
    for _ in range(3):
        balancer.start(a, 0.0)  # a: same latency, three in flight
    assert all(balancer.pick(0.0) is b for _ in range(20))


def test_fast_failures_do_not_attract_traffic() -> None:
    a, b = endpoints(2)
    balancer = PeakEwmaBalancer([a, b], default_rtt=0.03, rand=random.Random(4).random)
    balancer.start(a, 0.0)
    balancer.finish(a, 0.0, 0.0001, False)  # connection refused in 0.1 ms
    balancer.start(b, 0.0)
    balancer.finish(b, 0.0, 0.01, True)
    assert a.load.cost >= 0.03
    assert balancer.pick(0.0) is b


@pytest.mark.parametrize("kind", ["P2CPeakEWMA", "RoundRobin", "LeastRequest", "ConsistentHash"])
def test_ejected_endpoints_get_no_traffic(kind: str) -> None:
    eps = endpoints(5)
    for ep in eps[:3]:
        ep.outlier.ejected_until = 100.0
    balancer = make_balancer(LbPolicy(kind), eps, rand=random.Random(5).random)
    for i in range(300):
        ep = balancer.pick(50.0, str(i).encode() if i % 2 else None)
        assert ep in eps[3:]
    assert {balancer.pick(100.0, None) for _ in range(200)} == set(eps)  # back after expiry
    for ep in eps:
        ep.outlier.ejected_until = 100.0
    assert balancer.pick(50.0, b"key") is None
    assert balancer.pick(50.0) is None


@pytest.mark.parametrize("kind", ["P2CPeakEWMA", "RoundRobin", "LeastRequest", "ConsistentHash"])
def test_empty_and_single_endpoint_sets(kind: str) -> None:
    assert make_balancer(LbPolicy(kind), []).pick(0.0, b"k") is None
    (only,) = endpoints(1)
    balancer = make_balancer(LbPolicy(kind), [only])
    assert balancer.pick(0.0) is only and balancer.pick(0.0, b"k") is only


def test_round_robin_cycles_evenly() -> None:
    eps = endpoints(3)
    balancer = RoundRobinBalancer(eps, rand=random.Random(6).random)
    picks = Counter(balancer.pick(0.0) for _ in range(300))
    assert set(picks.values()) == {100}


def test_least_request_prefers_fewer_in_flight() -> None:
    eps = endpoints(2)
    balancer = LeastRequestBalancer(eps, rand=random.Random(7).random)
    balancer.start(eps[0], 0.0)
    assert all(balancer.pick(0.0) is eps[1] for _ in range(10))
    balancer.finish(eps[0], 0.0, 0.01, True)
    assert eps[0].load.pending == 0
    balancer.finish(eps[0], 0.0, 0.01, True)  # unmatched finish never goes negative
    assert eps[0].load.pending == 0


def test_least_request_balances_a_slow_endpoint() -> None:
    eps = endpoints(3)
    balancer = LeastRequestBalancer(eps, rand=random.Random(8).random)
    picks = simulate(balancer, lambda ep, _: 0.5 if ep is eps[0] else 0.01, 100, 10.0)
    assert picks[eps[0].id] < picks[eps[1].id] / 2


def test_consistent_hash_key_stays_on_one_endpoint() -> None:
    eps = endpoints(6)
    balancer = ConsistentHashBalancer(eps)
    for user in range(50):
        key = f"user-{user}".encode()
        assert len({balancer.pick(float(t), key) for t in range(20)}) == 1


def test_consistent_hash_spreads_keys() -> None:
    eps = endpoints(4)
    balancer = ConsistentHashBalancer(eps)
    picks = Counter(balancer.pick(0.0, f"k{i}".encode()) for i in range(4000))
    assert all(600 < n < 1400 for n in picks.values()), picks


def test_consistent_hash_minimal_disruption_when_an_endpoint_leaves() -> None:
    eps = endpoints(5)
    before = ConsistentHashBalancer(eps)
    after = ConsistentHashBalancer([ep for ep in eps if ep.id != "ep-2"])
    moved = 0
    for i in range(2000):
        key = f"session-{i}".encode()
        old, new = before.pick(0.0, key), after.pick(0.0, key)
        if old is not None and old.id != "ep-2":
            assert new is old  # only the leaver's keys move
        else:
            moved += 1
    assert 250 < moved < 650  # about a fifth


def test_consistent_hash_ejection_moves_only_the_ejected_keys() -> None:
    eps = endpoints(4)
    balancer = ConsistentHashBalancer(eps)
    keys = [f"k{i}".encode() for i in range(500)]
    home = {key: balancer.pick(0.0, key) for key in keys}
    eps[1].outlier.ejected_until = 10.0
    for key in keys:
        now_on = balancer.pick(5.0, key)
        assert now_on is not eps[1]
        if home[key] is not eps[1]:
            assert now_on is home[key]
        assert balancer.pick(10.0, key) is home[key]  # back home after the ejection


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(0, 30), min_size=2, max_size=12), st.binary(min_size=1, max_size=16))
def test_consistent_hash_removal_property(ids: set[int], key: bytes) -> None:
    eps = [Endpoint(f"e{i}", "10.0.0.1", 80, {}) for i in sorted(ids)]
    full = ConsistentHashBalancer(eps, vnodes=20)
    chosen = full.pick(0.0, key)
    assert chosen is not None
    for leaving in eps:
        rest = ConsistentHashBalancer([ep for ep in eps if ep is not leaving], vnodes=20)
        if leaving is not chosen:
            assert rest.pick(0.0, key) is chosen


def test_consistent_hash_without_key_still_balances() -> None:
    eps = endpoints(3)
    balancer = ConsistentHashBalancer(eps, rand=random.Random(9).random)
    assert len({balancer.pick(0.0) for _ in range(100)}) == 3


def test_make_balancer_follows_policy() -> None:
    eps = endpoints(2)
    assert isinstance(make_balancer(None, eps), PeakEwmaBalancer)
    ewma = make_balancer(LbPolicy("P2CPeakEWMA", default_rtt=0.1, decay=3.0), eps)
    assert isinstance(ewma, PeakEwmaBalancer) and ewma.default_rtt == 0.1 and ewma.decay == 3.0
    assert isinstance(make_balancer(LbPolicy("RoundRobin"), eps), RoundRobinBalancer)
    assert isinstance(make_balancer(LbPolicy("LeastRequest"), eps), LeastRequestBalancer)
    assert isinstance(make_balancer(LbPolicy("ConsistentHash"), eps), ConsistentHashBalancer)


def test_hash_key_from_header_and_cookie() -> None:
    headers = [(b"x-user", b"42"), (b"cookie", b"a=1; session=abc; b=2")]
    assert hash_key_from_headers(LbPolicy(hash_header=b"x-user"), headers) == b"42"
    assert hash_key_from_headers(LbPolicy(hash_header=b"x-other"), headers) is None
    assert hash_key_from_headers(LbPolicy(hash_cookie=b"session"), headers) == b"abc"
    assert hash_key_from_headers(LbPolicy(hash_cookie=b"sess"), headers) is None
    assert hash_key_from_headers(LbPolicy(), headers) is None
