"""Retry budget, backoff, retriability, outlier ejection and limits, all in virtual time."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossamer.proxy.resilience import (
    MAX_RETRY_BODY,
    Limits,
    OutlierDetector,
    OutlierState,
    RetryBudget,
    backoff,
    is_retriable,
)


class Ep:
    """Anything with an ``outlier`` slot is an endpoint to the detector."""

    def __init__(self) -> None:
        self.outlier = OutlierState()


# --- retry budget ---------------------------------------------------------------------------


def test_budget_allows_min_retries_per_second_without_traffic() -> None:
    budget = RetryBudget(percent=20, min_per_second=10, interval=10.0)
    granted = sum(budget.try_withdraw(now=0.0) for _ in range(150))
    assert granted == 100  # 10/s over a 10 s window


def test_budget_adds_percent_of_requests() -> None:
    budget = RetryBudget(percent=20, min_per_second=0, interval=10.0)
    for i in range(1000):
        budget.record_request(now=i * 0.005)  # 1000 requests within 5 s
    granted = sum(budget.try_withdraw(now=5.0) for _ in range(500))
    assert granted == 200


def test_budget_window_slides_and_refills() -> None:
    budget = RetryBudget(percent=0, min_per_second=1, interval=10.0)
    assert sum(budget.try_withdraw(now=0.0) for _ in range(20)) == 10
    assert not budget.try_withdraw(now=9.0)  # retries at t=0 still in the window
    assert sum(budget.try_withdraw(now=10.5) for _ in range(20)) == 10  # aged out


def test_budget_old_requests_stop_counting() -> None:
    budget = RetryBudget(percent=50, min_per_second=0, interval=10.0)
    for _ in range(100):
        budget.record_request(now=0.0)
    assert budget.try_withdraw(now=1.0)
    assert not budget.try_withdraw(now=20.0)  # the deposits expired with the window


def test_budget_rejects_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        RetryBudget(interval=0)


@given(
    st.lists(st.tuples(st.floats(0, 100), st.booleans()), max_size=300),
    st.integers(0, 100),
    st.integers(0, 5),
)
def test_budget_never_exceeds_its_allowance(
    events: list[tuple[float, bool]], percent: int, per_second: int
) -> None:
    budget = RetryBudget(percent=percent, min_per_second=per_second, interval=10.0)
    log: list[tuple[float, bool]] = []  # (time, is_retry)
    for t, is_request in sorted(events):
        if is_request:
            budget.record_request(t)
            log.append((t, False))
        elif budget.try_withdraw(t):
            log.append((t, True))
            # Anything granted fits the budget over the window the budget keeps: ten 1 s
            # buckets ending with the current one (a wider window would also count retries
            # whose deposits have already aged out, and so could never hold).
            oldest_bucket = math.floor(t) - 9
            window = [r for when, r in log if math.floor(when) >= oldest_bucket]
            requests = sum(1 for r in window if not r)
            retries = sum(1 for r in window if r)
            assert retries <= percent / 100 * requests + per_second * 10.0 + 1e-9


# --- backoff --------------------------------------------------------------------------------


def test_backoff_is_exponential_with_full_jitter() -> None:
    assert backoff(1, 0.025, 1.0, 0.999999) == pytest.approx(0.025, rel=1e-3)
    assert backoff(3, 0.025, 1.0, 0.5) == pytest.approx(0.05)
    assert backoff(20, 0.025, 1.0, 0.5) == pytest.approx(0.5)  # capped window
    assert backoff(4, 0.025, 1.0, 0.0) == 0.0
    assert backoff(10_000, 0.025, 2.0, 0.5) == pytest.approx(1.0)  # no overflow


@given(st.integers(1, 200), st.floats(0.001, 1), st.floats(0.001, 60), st.floats(0, 0.9999))
def test_backoff_stays_in_window(attempt: int, base: float, cap: float, rand: float) -> None:
    delay = backoff(attempt, base, cap, rand)
    assert 0 <= delay <= min(cap, base * 2.0 ** min(attempt - 1, 62))


# --- retriability ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", b"GET"])
def test_idempotent_methods_retry_on_listed_codes_and_failures(method: str | bytes) -> None:
    assert is_retriable(method, 503, False, 0, {502, 503, 504})
    assert is_retriable(method, None, False, 0, {503})  # reset, no response
    assert not is_retriable(method, 500, False, 0, {502, 503, 504})
    assert not is_retriable(method, 200, False, 0, {502, 503, 504})


@pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT", b"POST"])
def test_unsafe_methods_retry_only_when_proven_unsent(method: str | bytes) -> None:
    assert not is_retriable(method, 503, False, 10, {503})
    assert not is_retriable(method, None, False, 10, {503})
    assert is_retriable(method, None, True, 10, {503})


def test_large_or_streamed_bodies_are_never_retried() -> None:
    assert is_retriable("PUT", 503, False, MAX_RETRY_BODY, {503})
    assert not is_retriable("PUT", 503, False, MAX_RETRY_BODY + 1, {503})
    assert not is_retriable("POST", None, True, MAX_RETRY_BODY + 1, {503})
    assert not is_retriable("GET", 503, False, None, {503})


# --- outlier detection ----------------------------------------------------------------------


def fail(detector: OutlierDetector, ep: Ep, now: float, times: int) -> bool:
    return any([detector.record(ep, now, ok=False) for _ in range(times)])


def test_ejects_after_consecutive_failures_for_base_time() -> None:
    eps = [Ep() for _ in range(4)]
    detector = OutlierDetector(5, 30.0, 50, endpoints=eps)
    assert not fail(detector, eps[0], 0.0, 4)
    assert not detector.is_ejected(eps[0], 0.0)
    assert detector.record(eps[0], 0.0, ok=False)
    assert detector.is_ejected(eps[0], 29.9)
    assert not detector.is_ejected(eps[0], 30.0)


def test_failures_while_ejected_do_not_count() -> None:
    eps = [Ep() for _ in range(4)]
    detector = OutlierDetector(3, 30.0, 50, endpoints=eps)
    assert fail(detector, eps[0], 0.0, 3)
    assert not fail(detector, eps[0], 1.0, 10)  # in-flight stragglers
    assert eps[0].outlier.ejected_until == 30.0
    assert not fail(detector, eps[0], 31.0, 2)  # back: a fresh count
    assert fail(detector, eps[0], 31.0, 1)
    assert eps[0].outlier.ejected_until == 31.0 + 60.0


def test_success_resets_the_consecutive_count() -> None:
    eps = [Ep() for _ in range(4)]
    detector = OutlierDetector(3, 30.0, 50, endpoints=eps)
    for _ in range(10):
        fail(detector, eps[0], 0.0, 2)
        detector.record(eps[0], 0.0, ok=True)
    assert not detector.is_ejected(eps[0], 0.0)


def test_ejection_time_doubles_and_is_capped() -> None:
    eps = [Ep() for _ in range(2)]
    detector = OutlierDetector(1, 10.0, 50, max_ejection=35.0, endpoints=eps)
    now = 0.0
    durations = []
    for _ in range(4):
        assert detector.record(eps[0], now, ok=False)
        durations.append(eps[0].outlier.ejected_until - now)
        now = eps[0].outlier.ejected_until
    assert durations == [10.0, 20.0, 35.0, 35.0]


def test_good_behaviour_lowers_the_exponent() -> None:
    eps = [Ep() for _ in range(2)]
    detector = OutlierDetector(1, 10.0, 50, endpoints=eps)
    detector.record(eps[0], 0.0, ok=False)
    detector.record(eps[0], 10.0, ok=False)  # second ejection: 20 s, until 30
    assert eps[0].outlier.ejections == 2
    detector.record(eps[0], 35.0, ok=True)  # only 5 s calm: no change
    assert eps[0].outlier.ejections == 2
    detector.record(eps[0], 40.0, ok=True)
    detector.record(eps[0], 40.0, ok=True)  # one step per calm period, not per success
    assert eps[0].outlier.ejections == 1
    detector.record(eps[0], 50.0, ok=True)
    assert eps[0].outlier.ejections == 0
    detector.record(eps[0], 60.0, ok=False)
    assert eps[0].outlier.ejected_until == 70.0  # back to the base time


def test_at_most_max_percent_ejected() -> None:
    eps = [Ep() for _ in range(10)]
    detector = OutlierDetector(1, 30.0, 50, endpoints=eps)
    ejected = [detector.record(ep, 0.0, ok=False) for ep in eps]
    assert sum(ejected) == 5
    assert detector.ejected_count(0.0) == 5
    # Once one comes back, another may go.
    assert detector.record(eps[9], 31.0, ok=False)


@pytest.mark.parametrize(
    ("total", "percent", "allowed"),
    [(1, 50, 0), (1, 100, 1), (2, 50, 1), (3, 50, 1), (3, 10, 1), (4, 50, 2), (5, 0, 0)],
)
def test_small_backends_share_cap(total: int, percent: int, allowed: int) -> None:
    eps = [Ep() for _ in range(total)]
    detector = OutlierDetector(1, 30.0, percent, endpoints=eps)
    assert sum(detector.record(ep, 0.0, ok=False) for ep in eps) == allowed


@given(
    st.integers(1, 12),
    st.integers(0, 100),
    st.lists(st.tuples(st.integers(0, 11), st.booleans(), st.floats(0, 5)), max_size=200),
)
def test_ejected_share_never_exceeds_cap(
    total: int, percent: int, events: list[tuple[int, bool, float]]
) -> None:
    eps = [Ep() for _ in range(total)]
    detector = OutlierDetector(2, 3.0, percent, endpoints=eps)
    now = 0.0
    for index, ok, step in events:
        now += step
        detector.record(eps[index % total], now, ok)
        ejected = detector.ejected_count(now)
        limit = max(percent * total // 100, 1 if percent > 0 and total >= 2 else 0)
        if percent >= 100:
            limit = total
        assert ejected <= limit


# --- limits ---------------------------------------------------------------------------------


def test_limits_overflow_and_release() -> None:
    limits = Limits(max_connections=2, max_pending=1, max_requests=3)
    assert limits.try_acquire_connection() and limits.try_acquire_connection()
    assert not limits.try_acquire_connection()
    limits.release_connection()
    assert limits.try_acquire_connection()
    assert limits.try_acquire_pending() and not limits.try_acquire_pending()
    assert all(limits.try_acquire_request() for _ in range(3))
    assert not limits.try_acquire_request()
    assert limits.overflows == 3
    for _ in range(5):
        limits.release_request()  # extra releases never go negative
    assert limits.active_requests == 0


def test_reconfigure_keeps_in_flight_counts() -> None:
    limits = Limits(max_requests=2)
    assert limits.try_acquire_request() and limits.try_acquire_request()
    limits.reconfigure(1024, 1024, 3)
    assert limits.active_requests == 2
    assert limits.try_acquire_request()
    assert not limits.try_acquire_request()
