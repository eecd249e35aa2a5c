"""Trace context from request headers: W3C `traceparent` (preferred), else B3 (`b3` single
header or `x-b3-*`). Pure functions over header lists; malformed input is ignored (the
request then starts a new trace), never an error.
"""

from __future__ import annotations

import random

from gossamer.proxy.http.head import Headers

TRACEPARENT = b"traceparent"
_B3_NAMES = frozenset({b"b3", b"x-b3-traceid", b"x-b3-spanid", b"x-b3-sampled", b"x-b3-flags"})
_HEX = frozenset(b"0123456789abcdef")
_bits = random.getrandbits


class Context:
    """What a request carried: its trace, the caller's span and the sampling decision."""

    __slots__ = ("parent_id", "sampled", "trace_id", "w3c")

    def __init__(
        self, trace_id: str, parent_id: str, sampled: bool | None, w3c: bool = False
    ) -> None:
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.sampled = sampled  # None: the caller left the decision to us
        self.w3c = w3c  # from traceparent (forwarded as is) rather than converted from B3

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Context) and (
            (self.trace_id, self.parent_id, self.sampled)
            == (other.trace_id, other.parent_id, other.sampled)
        )

    def __repr__(self) -> str:
        return f"Context({self.trace_id}, {self.parent_id}, sampled={self.sampled})"


def _hex(value: bytes, length: int) -> str | None:
    if len(value) != length or not _HEX.issuperset(value):
        return None
    text = value.decode("ascii")
    return None if text == "0" * length else text


def parse_traceparent(value: bytes) -> Context | None:
    """`00-<32 hex trace>-<16 hex parent>-<2 hex flags>` (W3C Trace Context level 1)."""
    parts = value.strip().lower().split(b"-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == b"ff":
        return None
    if parts[0] == b"00" and len(parts) != 4:
        return None  # version 00 has exactly four fields; later versions may add more
    trace_id, parent_id = _hex(parts[1], 32), _hex(parts[2], 16)
    flags = parts[3]
    if trace_id is None or parent_id is None or len(flags) != 2 or not _HEX.issuperset(flags):
        return None
    return Context(trace_id, parent_id, bool(int(flags, 16) & 1), w3c=True)


def parse_b3_single(value: bytes) -> Context | None:
    """`b3: {trace}-{span}[-{sampled}[-{parent}]]`; a 64-bit trace id is left-padded."""
    parts = value.strip().lower().split(b"-")
    if len(parts) < 2:
        return None
    sampled = _b3_sampled(parts[2]) if len(parts) > 2 else None
    return _b3(parts[0], parts[1], sampled)


def _b3_sampled(value: bytes) -> bool | None:
    if value in (b"1", b"d", b"true"):
        return True
    if value in (b"0", b"false"):
        return False
    return None


def _b3(trace: bytes, span: bytes, sampled: bool | None) -> Context | None:
    if len(trace) == 16:
        trace = b"0" * 16 + trace
    trace_id, span_id = _hex(trace, 32), _hex(span, 16)
    if trace_id is None or span_id is None:
        return None
    return Context(trace_id, span_id, sampled)


def extract(headers: Headers) -> Context | None:
    """The request's trace context: traceparent wins over B3, single B3 over multi."""
    b3: dict[bytes, bytes] = {}
    for name, value in headers:
        if name == TRACEPARENT:
            return parse_traceparent(value)
        if name in _B3_NAMES:
            b3.setdefault(name, value.strip().lower())
    if not b3:
        return None
    if b"b3" in b3:
        return parse_b3_single(b3[b"b3"])
    if b"x-b3-traceid" not in b3 or b"x-b3-spanid" not in b3:
        return None
    sampled = b"1" if b3.get(b"x-b3-flags") == b"1" else b3.get(b"x-b3-sampled", b"")
    return _b3(b3[b"x-b3-traceid"], b3[b"x-b3-spanid"], _b3_sampled(sampled))


def traceparent(trace_id: str, span_id: str, sampled: bool) -> bytes:
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}".encode("ascii")


def inject(headers: Headers, value: bytes) -> None:
    """Set `traceparent` (in place: the request head is forwarded from this list)."""
    for i, (name, _) in enumerate(headers):
        if name == TRACEPARENT:
            headers[i] = (TRACEPARENT, value)
            return
    headers.append((TRACEPARENT, value))


# Ids need to be unique, not secret: the PRNG (as OpenTelemetry's SDKs use) avoids a
# getrandom() system call per request.
def new_trace_id() -> str:
    return f"{_bits(128) or 1:032x}"


def new_span_id() -> str:
    return f"{_bits(64) or 1:016x}"


def unsampled_root() -> bytes:
    """A new trace's `traceparent` with sampling off (one random draw for both ids)."""
    ids = f"{_bits(192) | 1 << 64 | 1:048x}"  # neither id all zeros
    return ("00-" + ids[:32] + "-" + ids[32:] + "-00").encode("ascii")
