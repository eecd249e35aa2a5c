"""HTTPRoute filters as precomputed plans (Gateway API semantics, plus fault injection). Pure.

A rule's wire filter list (docs/protocol.md ENTRY.routes[i].filters) is compiled once, at
snapshot load, into a ``FilterPlan``; a rule with no filters and no session persistence
has no plan at all, so plain requests pay one attribute test. Applying a plan takes
inputs (header lists, paths, random numbers) and returns outputs; the data path does the
I/O (outbound/filtering.py).

    plan = compile_filters(route_filters, field, matched_prefix=b"/api")
    headers = plan.request_headers.apply(headers)         # set, then add, then remove
    path = replace_path(plan.rewrite_path, b"/api/x", plan.prefix)
    location = redirect_location(plan.redirect, b"http", b"reviews:9080", path, query, plan.prefix)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Headers = list[tuple[bytes, bytes]]

FULL_PATH, PREFIX_MATCH = 1, 2
_PATH_TYPES = {"ReplaceFullPath": FULL_PATH, "ReplacePrefixMatch": PREFIX_MATCH}
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
# Framing and connection fields: a filter that touched them could break the message itself.
# The control plane refuses them at apply time; here they are dropped, never applied.
UNTOUCHABLE = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"upgrade",
        b"te",
        b"trailer",
        b"proxy-connection",
    }
)
ROUTE_FILTERS = frozenset(
    {
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestRedirect",
        "URLRewrite",
        "RequestMirror",
        "Fault",
    }
)
# Per-backend filters change what is sent to that backend; deciding (redirect) and copying
# (mirror) happen per rule.
BACKEND_FILTERS = frozenset(
    {"RequestHeaderModifier", "ResponseHeaderModifier", "URLRewrite", "Fault"}
)


class HeaderOps:
    """One RequestHeaderModifier or ResponseHeaderModifier, names lower-cased bytes."""

    __slots__ = ("add", "drop", "remove", "set")

    def __init__(
        self,
        set: tuple[tuple[bytes, bytes], ...] = (),
        add: tuple[tuple[bytes, bytes], ...] = (),
        remove: frozenset[bytes] = frozenset(),
    ) -> None:
        self.set = set
        self.add = add
        self.remove = remove
        self.drop = remove | {name for name, _ in set}  # existing lines that go away

    def apply(self, headers: Sequence[tuple[bytes, bytes]]) -> Headers:
        """A new header list: ``set`` replaces every line of a name, ``add`` appends to an
        existing value with a comma (Gateway API: ``foo`` + add ``bar`` = ``foo,bar``) or adds
        a line, ``remove`` drops every line of a name, whatever set or add did."""
        drop = self.drop
        out = [(name, value) for name, value in headers if name not in drop]
        out.extend(self.set)
        for name, value in self.add:
            for i, (existing, old) in enumerate(out):
                if existing == name:
                    out[i] = (name, old + b"," + value)
                    break
            else:
                out.append((name, value))
        if self.remove:
            out = [(name, value) for name, value in out if name not in self.remove]
        return out

    def merged(self, other: HeaderOps) -> HeaderOps:
        return HeaderOps(self.set + other.set, self.add + other.add, self.remove | other.remove)


class PathChange:
    __slots__ = ("kind", "value")

    def __init__(self, kind: int, value: bytes) -> None:
        self.kind = kind
        self.value = value


class Redirect:
    __slots__ = ("hostname", "path", "port", "scheme", "status")

    def __init__(
        self,
        status: int = 302,
        scheme: bytes | None = None,
        hostname: bytes | None = None,
        port: int | None = None,
        path: PathChange | None = None,
    ) -> None:
        self.status = status
        self.scheme = scheme
        self.hostname = hostname
        self.port = port
        self.path = path


class Fault:
    """Delay and/or abort for a share of requests; percents in [0, 100]."""

    __slots__ = ("abort_percent", "abort_status", "delay", "delay_percent")

    def __init__(
        self,
        delay: float = 0.0,
        delay_percent: float = 0.0,
        abort_status: int = 0,
        abort_percent: float = 0.0,
    ) -> None:
        self.delay = delay
        self.delay_percent = delay_percent
        self.abort_status = abort_status
        self.abort_percent = abort_percent

    def decide(self, r_delay: float, r_abort: float) -> tuple[float, int]:
        """(seconds to wait, status to answer or 0) for two uniform numbers in [0, 1)."""
        delay = self.delay if r_delay * 100.0 < self.delay_percent else 0.0
        status = self.abort_status if r_abort * 100.0 < self.abort_percent else 0
        return delay, status


class FilterPlan:
    """Everything a rule (or one of its backends) does to a request besides routing it."""

    __slots__ = (
        "fault",
        "prefix",
        "redirect",
        "request_headers",
        "response_headers",
        "rewrite_host",
        "rewrite_path",
        "sticky_cookie",
        "sticky_header",
    )

    def __init__(self, prefix: bytes = b"/") -> None:
        self.prefix = prefix  # the rule's matched path prefix, for ReplacePrefixMatch
        self.request_headers: HeaderOps | None = None
        self.response_headers: HeaderOps | None = None
        self.redirect: Redirect | None = None
        self.rewrite_host: bytes | None = None
        self.rewrite_path: PathChange | None = None
        self.fault: Fault | None = None
        self.sticky_header: bytes | None = None  # session persistence key (lower-case name)
        self.sticky_cookie: bytes | None = None

    @property
    def empty(self) -> bool:
        return (
            self.request_headers is None
            and self.response_headers is None
            and self.redirect is None
            and self.rewrite_host is None
            and self.rewrite_path is None
            and self.fault is None
            and self.sticky_header is None
            and self.sticky_cookie is None
        )


# --- applying -------------------------------------------------------------------------------


def replace_path(change: PathChange, path: bytes, prefix: bytes) -> bytes:
    """The path after a ReplaceFullPath or ReplacePrefixMatch (``prefix``: the rule's matched
    PathPrefix, without a trailing slash). ``/api`` → ``/v2``: ``/api/x`` → ``/v2/x``, ``/api``
    → ``/v2``; ``/api`` → ``/``: ``/api/x`` → ``/x``, ``/api`` → ``/``."""
    if change.kind == FULL_PATH:
        return change.value
    rest = path if prefix == b"/" else path[len(prefix) :]
    if rest and not rest.startswith(b"/"):
        rest = b"/" + rest  # a prefix match is segment-wise, so this is a defensive join
    return (change.value.rstrip(b"/") + rest) or b"/"


def split_authority(authority: bytes) -> tuple[bytes, int | None]:
    """(host, port or None) of a Host header value; IPv6 literals keep their brackets."""
    host, sep, port = authority.rpartition(b":")
    if sep and port.isdigit() and (not host.startswith(b"[") or host.endswith(b"]")):
        return host, int(port)
    return authority, None


def redirect_location(
    redirect: Redirect,
    scheme: bytes,
    authority: bytes,
    path: bytes,
    query: bytes | None,
    prefix: bytes,
) -> bytes:
    """The absolute ``Location`` for a RequestRedirect (Gateway API port rules: an explicit
    port; else the new scheme's well-known port; else the port the request named; the
    default port of the scheme is left out)."""
    host, request_port = split_authority(authority)
    new_scheme = redirect.scheme or scheme
    if redirect.hostname is not None:
        host = redirect.hostname
    if redirect.port is not None:
        port = redirect.port
    elif redirect.scheme is not None:
        port = _DEFAULT_PORTS.get(new_scheme, 80)
    else:
        port = request_port if request_port is not None else _DEFAULT_PORTS.get(scheme, 80)
    if redirect.path is not None:
        path = replace_path(redirect.path, path, prefix)
    netloc = host if _DEFAULT_PORTS.get(new_scheme) == port else b"%s:%d" % (host, port)
    location = new_scheme + b"://" + netloc + path
    return location + b"?" + query if query else location


def shadow_authority(authority: bytes) -> bytes:
    """The Host of a mirrored request: ``-shadow`` appended to the host name, before any port
    (as Envoy and Istio do), so the shadow backend can tell copies from real traffic."""
    host, port = split_authority(authority)
    return host + b"-shadow" if port is None else b"%s-shadow:%d" % (host, port)


def cookie_value(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of cookie ``name`` in the request's ``cookie`` lines, or None."""
    prefix = name + b"="
    for key, value in headers:
        if key == b"cookie":
            for part in value.split(b";"):
                part = part.strip()
                if part.startswith(prefix):
                    return part[len(prefix) :]
    return None


def header_value(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def sticky_key(plan: FilterPlan, headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The session key of a request (its configured header or cookie), or None."""
    if plan.sticky_header is not None:
        return header_value(headers, plan.sticky_header) or None
    if plan.sticky_cookie is not None:
        return cookie_value(headers, plan.sticky_cookie) or None
    return None


def set_cookie_ops(name: bytes, value: bytes) -> HeaderOps:
    """Response edit handing a new session its cookie (Gateway API: the implementation
    generates the session cookie when the client has none)."""
    return HeaderOps(add=((b"set-cookie", name + b"=" + value + b"; Path=/; HttpOnly"),))


# --- compiling from the wire ---------------------------------------------------------------


def compile_filters(
    filters: Sequence[Any],
    field: str,
    prefix: bytes = b"/",
    allowed: frozenset[str] = ROUTE_FILTERS,
    sticky: Any = None,
    sticky_field: str = "sessionPersistence",
) -> FilterPlan | None:
    """A plan for a rule's (or a backend's) filters and session persistence, or None when
    nothing applies. RequestMirror is validated here but carried by ``Route.mirrors``.
    ValueError names the field on anything malformed."""
    plan = FilterPlan(prefix)
    for i, raw in enumerate(filters):
        ff = f"{field}[{i}]"
        f = _mapping(raw, ff)
        kind = f.get("type")
        if kind not in allowed:
            raise ValueError(f"{ff}.type: {kind!r} is not one of {', '.join(sorted(allowed))}")
        if kind == "RequestHeaderModifier":
            ops = _header_ops(f.get("requestHeaderModifier"), f"{ff}.requestHeaderModifier")
            old = plan.request_headers
            plan.request_headers = ops if old is None else old.merged(ops)
        elif kind == "ResponseHeaderModifier":
            ops = _header_ops(f.get("responseHeaderModifier"), f"{ff}.responseHeaderModifier")
            old = plan.response_headers
            plan.response_headers = ops if old is None else old.merged(ops)
        elif kind == "RequestRedirect":
            plan.redirect = _redirect(f.get("requestRedirect"), f"{ff}.requestRedirect")
        elif kind == "URLRewrite":
            w = _mapping(f.get("urlRewrite"), f"{ff}.urlRewrite")
            if w.get("hostname") is not None:
                plan.rewrite_host = _token(w["hostname"], f"{ff}.urlRewrite.hostname")
            if w.get("path") is not None:
                plan.rewrite_path = _path_change(w["path"], f"{ff}.urlRewrite.path")
        elif kind == "Fault":
            plan.fault = _fault(f.get("fault"), f"{ff}.fault")
    if sticky is not None:
        s = _mapping(sticky, sticky_field)
        if s.get("header") is not None:
            plan.sticky_header = _token(s["header"], f"{sticky_field}.header").lower()
        elif s.get("cookie") is not None:
            plan.sticky_cookie = _token(s["cookie"], f"{sticky_field}.cookie")
        else:
            raise ValueError(f"{sticky_field}: expected a 'header' or a 'cookie'")
    return None if plan.empty else plan


def _header_ops(wire: Any, field: str) -> HeaderOps:
    m = _mapping(wire, field)

    def pairs(key: str) -> tuple[tuple[bytes, bytes], ...]:
        out = []
        for i, item in enumerate(_list(m.get(key) or [], f"{field}.{key}")):
            h = _mapping(item, f"{field}.{key}[{i}]")
            name = _token(h.get("name"), f"{field}.{key}[{i}].name").lower()
            value = _token(h.get("value"), f"{field}.{key}[{i}].value", allow_empty=True)
            if name not in UNTOUCHABLE:
                out.append((name, value))
        return tuple(out)

    remove = frozenset(
        _token(name, f"{field}.remove[{i}]").lower()
        for i, name in enumerate(_list(m.get("remove") or [], f"{field}.remove"))
    )
    return HeaderOps(pairs("set"), pairs("add"), remove - UNTOUCHABLE)


def _path_change(wire: Any, field: str) -> PathChange:
    p = _mapping(wire, field)
    kind = _PATH_TYPES.get(p.get("type"))  # type: ignore[arg-type]
    if kind is None:
        raise ValueError(f"{field}.type: {p.get('type')!r} is not one of {', '.join(_PATH_TYPES)}")
    key = "replaceFullPath" if kind == FULL_PATH else "replacePrefixMatch"
    value = _token(p.get(key), f"{field}.{key}")
    if not value.startswith(b"/"):
        raise ValueError(f"{field}.{key}: {value!r} must start with '/'")
    return PathChange(kind, value)


def _redirect(wire: Any, field: str) -> Redirect:
    r = _mapping(wire, field)
    status = r.get("statusCode", 302)
    if status not in _REDIRECT_CODES:
        raise ValueError(f"{field}.statusCode: {status!r} is not one of 301, 302, 303, 307, 308")
    scheme = r.get("scheme")
    if scheme is not None and scheme not in ("http", "https"):
        raise ValueError(f"{field}.scheme: {scheme!r} is not one of http, https")
    port = r.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
    ):
        raise ValueError(f"{field}.port: {port!r} is not a TCP port (1-65535)")
    hostname = r.get("hostname")
    return Redirect(
        status,
        None if scheme is None else scheme.encode(),
        None if hostname is None else _token(hostname, f"{field}.hostname"),
        port,
        None if r.get("path") is None else _path_change(r["path"], f"{field}.path"),
    )


def _fault(wire: Any, field: str) -> Fault:
    f = _mapping(wire, field)
    fault = Fault()
    if f.get("delay") is not None:
        d = _mapping(f["delay"], f"{field}.delay")
        fault.delay = _number(d.get("seconds"), f"{field}.delay.seconds", 0.0, 3600.0)
        fault.delay_percent = _number(d.get("percent", 100), f"{field}.delay.percent", 0.0, 100.0)
    if f.get("abort") is not None:
        a = _mapping(f["abort"], f"{field}.abort")
        status = a.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(
                f"{field}.abort.status: expected an HTTP status 200-599, got {status!r}"
            )
        fault.abort_status = status
        fault.abort_percent = _number(a.get("percent", 100), f"{field}.abort.percent", 0.0, 100.0)
    return fault


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{field}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{field}: expected a list, got {type(value).__name__}")
    return list(value)


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{field}: {value!r} is outside {low:g}-{high:g}")
    return float(value)


def _token(value: Any, field: str, allow_empty: bool = False) -> bytes:
    """A header name/value or host as bytes; CR, LF and NUL would split the message."""
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ValueError(f"{field}: expected a non-empty string, got {value!r}")
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"{field}: {value!r} contains CR, LF or NUL")
    return value.encode("latin-1", "replace")
