"""Tap query validation, filters, the rate cap and the credential check."""

from __future__ import annotations

import pytest

from gossamer.proxy.telemetry.tap import (
    TapQueryError,
    TokenBucket,
    parse_query,
    tap_allowed,
)


def test_query_parsing_and_matching() -> None:
    flt = parse_query({"path": "/api", "method": "get", "status": "5xx"})
    assert flt.matches(b"GET", b"/api/x?q=1", 503)
    assert not flt.matches(b"POST", b"/api/x", 503)
    assert not flt.matches(b"GET", b"/other", 503)
    assert not flt.matches(b"GET", b"/api", 200)
    exact = parse_query({"status": "404"})
    assert exact.matches(b"GET", b"/", 404) and not exact.matches(b"GET", b"/", 400)
    assert parse_query({}).matches(b"PUT", b"/anything", 0)


@pytest.mark.parametrize(
    "query",
    [
        {"path": "api"},
        {"path": "/" + "a" * 2000},
        {"method": "G E T"},
        {"status": "6xx"},
        {"status": "50"},
        {"status": "5x"},
        {"body": "1"},
    ],
)
def test_bad_queries_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(TapQueryError):
        parse_query(query)


def test_token_bucket_caps_the_rate() -> None:
    bucket = TokenBucket(100.0, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(500)) == 100  # a burst of at most 100
    assert not bucket.take(0.001)
    assert sum(bucket.take(0.5) for _ in range(500)) == 50  # refills at 100/s
    assert sum(bucket.take(100.0) for _ in range(500)) == 100  # never more than the burst


def test_credential_check() -> None:
    assert tap_allowed(None, None)  # no admin credential provisioned yet: open
    assert tap_allowed(b"Bearer s3cret", "s3cret")
    assert not tap_allowed(None, "s3cret")
    assert not tap_allowed(b"Bearer wrong", "s3cret")
    assert not tap_allowed(b"s3cret", "s3cret")
