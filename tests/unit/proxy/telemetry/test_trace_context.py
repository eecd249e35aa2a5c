"""Trace context parsing and propagation (W3C traceparent, B3 single and multi)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossamer.proxy.telemetry import context
from gossamer.proxy.telemetry.context import Context

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_traceparent_valid() -> None:
    ctx = context.parse_traceparent(f"00-{TRACE}-{SPAN}-01".encode())
    assert ctx == Context(TRACE, SPAN, True)
    assert ctx is not None and ctx.w3c
    unsampled = context.parse_traceparent(f"00-{TRACE}-{SPAN}-00".encode())
    assert unsampled == Context(TRACE, SPAN, False)
    # Upper case is tolerated, a future version may carry more fields.
    assert context.parse_traceparent(f"00-{TRACE.upper()}-{SPAN}-01".encode()) is not None
    assert context.parse_traceparent(f"01-{TRACE}-{SPAN}-01-extra".encode()) is not None


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"garbage",
        f"00-{'0' * 32}-{SPAN}-01".encode(),  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01".encode(),  # all-zero parent id
        f"ff-{TRACE}-{SPAN}-01".encode(),  # forbidden version
        f"00-{TRACE}-{SPAN}-01-extra".encode(),  # version 00 has four fields
        f"00-{TRACE[:-1]}g-{SPAN}-01".encode(),
        f"00-{TRACE}-{SPAN}-1".encode(),
    ],
)
def test_traceparent_invalid_is_ignored(value: bytes) -> None:
    assert context.parse_traceparent(value) is None


def test_b3_single_and_multi_are_converted() -> None:
    assert context.parse_b3_single(f"{TRACE}-{SPAN}-1".encode()) == Context(TRACE, SPAN, True)
    assert context.parse_b3_single(f"{TRACE}-{SPAN}".encode()) == Context(TRACE, SPAN, None)
    short = TRACE[16:]  # 64-bit B3 trace ids are left-padded to 128 bits
    assert context.parse_b3_single(f"{short}-{SPAN}-0".encode()) == Context(
        "0" * 16 + short, SPAN, False
    )
    multi = [(b"x-b3-traceid", TRACE.encode()), (b"x-b3-spanid", SPAN.encode())]
    assert context.extract([*multi, (b"x-b3-sampled", b"1")]) == Context(TRACE, SPAN, True)
    assert context.extract([*multi, (b"x-b3-flags", b"1")]) == Context(TRACE, SPAN, True)
    assert context.extract(multi) == Context(TRACE, SPAN, None)
    assert context.extract([(b"x-b3-traceid", TRACE.encode())]) is None


def test_traceparent_wins_over_b3() -> None:
    other = "a" * 32
    headers = [
        (b"b3", f"{other}-{SPAN}-1".encode()),
        (b"traceparent", f"00-{TRACE}-{SPAN}-00".encode()),
    ]
    assert context.extract(headers) == Context(TRACE, SPAN, False)
    assert context.extract([(b"host", b"x")]) is None


def test_inject_replaces_or_appends() -> None:
    headers = [(b"host", b"a"), (b"traceparent", b"old")]
    context.inject(headers, context.traceparent(TRACE, SPAN, True))
    assert headers == [(b"host", b"a"), (b"traceparent", f"00-{TRACE}-{SPAN}-01".encode())]
    fresh: list[tuple[bytes, bytes]] = [(b"host", b"a")]
    context.inject(fresh, context.traceparent(TRACE, SPAN, False))
    assert fresh[-1] == (b"traceparent", f"00-{TRACE}-{SPAN}-00".encode())


def test_unsampled_roots_are_valid_and_distinct() -> None:
    roots = {context.unsampled_root() for _ in range(100)}
    assert len(roots) == 100
    for root in roots:
        ctx = context.parse_traceparent(root)
        assert ctx is not None and ctx.sampled is False


def test_new_ids_are_valid_hex() -> None:
    trace, span = context.new_trace_id(), context.new_span_id()
    assert context.parse_traceparent(context.traceparent(trace, span, True)) == Context(
        trace, span, True
    )


@given(st.binary(max_size=80))
def test_any_header_bytes_never_raise(value: bytes) -> None:
    context.extract([(b"traceparent", value)])
    context.extract([(b"b3", value)])
    context.extract([(b"x-b3-traceid", value), (b"x-b3-spanid", value)])
