"""`gossamer explain route`: run the sidecar's own matcher on a service's compiled entry. Pure.

    lines = explain_route(snapshot_wire, "default/reviews", "GET", "/api/reviews?x=1",
                          [("x-user", "42")])

The snapshot line comes from `GET /api/v1/snapshot/namespaces/{ns}/services/{name}`; it is
loaded with proxy.snapshot exactly as a sidecar loads it, so the answer is the sidecar's.
"""

from __future__ import annotations

from typing import Any

from gossamer.proxy.balance import hash_key_from_headers
from gossamer.proxy.routing import (
    PATH_EXACT,
    PATH_PREFIX,
    PATH_REGEX,
    Route,
    _parse_query,
    choose_backend,
    match_route,
    point_for_key,
)
from gossamer.proxy.snapshot import LbPolicy, Snapshot

_PATH_NAMES = {PATH_EXACT: "Exact", PATH_PREFIX: "PathPrefix", PATH_REGEX: "RegularExpression"}


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(all instances)"


def why_not(
    route: Route, method: str, path: str, params: dict[str, str], headers: dict[bytes, bytes]
) -> str:
    """The first condition of `route` the request fails, in words."""
    kind = _PATH_NAMES.get(route.path_kind, "")
    if kind and not _path_only_ok(route, path):
        return f"path {path!r} does not match {kind} {route.path_value!r}"
    if route.method is not None and method != route.method:
        return f"method {method} is not {route.method}"
    for name, exact, pattern in route.headers:
        value = headers.get(name)
        shown = name.decode("latin-1")
        if value is None:
            return f"header {shown} is missing"
        if exact is not None and value != exact:
            return f"header {shown}: {value.decode('latin-1')!r} != {exact.decode('latin-1')!r}"
        if exact is None and pattern is not None and not pattern.fullmatch(value):
            return f"header {shown}: {value.decode('latin-1')!r} does not match {pattern.pattern!r}"
    for qname, qexact, qpattern in route.query:
        qvalue = params.get(qname)
        if qvalue is None:
            return f"query parameter {qname} is missing"
        if qexact is not None and qvalue != qexact:
            return f"query parameter {qname}: {qvalue!r} != {qexact!r}"
        if qexact is None and qpattern is not None:
            return f"query parameter {qname}: {qvalue!r} does not match {qpattern.pattern!r}"
    return "matches"


def _path_only_ok(route: Route, path: str) -> bool:
    probe = Route()
    for slot in ("path_kind", "path_value", "path_prefix", "path_regex"):
        setattr(probe, slot, getattr(route, slot))
    return probe.matches("", path, {}, {})


def _describe_match(route: Route) -> str:
    parts = []
    if route.path_kind:
        parts.append(f"path {_PATH_NAMES[route.path_kind]} {route.path_value!r}")
    if route.method:
        parts.append(f"method {route.method}")
    for name, exact, pattern in route.headers:
        value = exact.decode("latin-1") if exact is not None else f"~{pattern and pattern.pattern}"
        parts.append(f"header {name.decode('latin-1')}={value}")
    for qname, qexact, qpattern in route.query:
        parts.append(
            f"query {qname}={qexact if qexact is not None else f'~{qpattern and qpattern.pattern}'}"
        )
    return ", ".join(parts) or "everything"


def explain_route(
    wire: Any, key: str, method: str, target: str, headers: list[tuple[str, str]]
) -> tuple[list[str], bool]:
    """Lines explaining where the request goes, and whether it would be served."""
    snap = Snapshot.from_wire(wire)
    view = snap.services.get(key)
    if view is None or not view.exists:
        return [f"service {key} is not known to the mesh"], False
    path, _, query = target.partition("?")
    raw_headers = [
        (n.strip().lower().encode("latin-1"), v.strip().encode("latin-1")) for n, v in headers
    ]
    lines = [
        f"service {key}: {len(view.endpoints)} healthy endpoint(s), {len(view.routes)} route rule(s)"
    ]
    if not view.routes:
        lines.append("no HTTPRoute: every request goes to all healthy endpoints of the service")
        return lines, bool(view.endpoints)
    chosen = match_route(view, method.upper(), path, query or None, raw_headers)
    found: dict[bytes, bytes] = {}
    for name, value in raw_headers:
        found[name] = value if name not in found else found[name] + b", " + value
    params = _parse_query(query)
    for i, route in enumerate(view.routes):
        where = f"  [{i}] {route.route} rule {route.rule} ({_describe_match(route)})"
        if route is chosen:
            lines.append(f"{where}: MATCHED")
            break
        lines.append(f"{where}: skipped, {why_not(route, method.upper(), path, params, found)}")
    if chosen is None:
        lines.append("no rule matches: the sidecar answers 404 (no_route)")
        return lines, False
    more, served = _backend_lines(chosen, wire, key, raw_headers)
    return lines + more, served


def _backend_lines(
    route: Route, wire: Any, key: str, headers: list[tuple[bytes, bytes]]
) -> tuple[list[str], bool]:
    lines: list[str] = []
    if not route.backends:
        kinds = ", ".join(str(f.get("type")) for f in route.filters) or "none"
        lines.append(f"no backend: the rule's filters answer ({kinds})")
        return lines, True
    total = sum(b.weight for b in route.backends)
    for b in route.backends:
        count = len(b.backend.endpoints) if b.backend is not None else 0
        health = f"{count} healthy" if count else "NO healthy endpoint: 503 no_healthy_endpoint"
        if b.backend is None:  # names no Service, or a missing one (Gateway API: 500)
            health = "INVALID backend (not an existing Service): 500 invalid_backend"
        lines.append(
            f"  backend {b.service} {_labels(b.labels)}: weight {b.weight} "
            f"({100 * b.weight / total:.1f}%), {health}"
        )
    sticky = _sticky_rule(wire, key, route)
    chosen = None
    if sticky is not None:
        policy = LbPolicy(
            hash_header=sticky["header"].encode() if "header" in sticky else None,
            hash_cookie=sticky["cookie"].encode() if "cookie" in sticky else None,
        )
        value = hash_key_from_headers(policy, headers)
        name = next(iter(sticky.items()))
        if value is None:
            lines.append(f"sticky on {name[0]} {name[1]}: not in the request, so chosen at random")
        else:
            point = point_for_key(value)
            chosen = choose_backend(route, point)
            lines.append(
                f"sticky on {name[0]} {name[1]}={value.decode('latin-1')}: point {point:.4f}"
            )
    elif len(route.backends) > 1:
        lines.append("no sticky key: each request picks a backend at random by weight")
    if chosen is None and len(route.backends) == 1:
        chosen = route.backends[0]
    if chosen is not None:
        lines.append(f"-> {chosen.service} {_labels(chosen.labels)}")
    served = any(b.backend is not None and b.backend.endpoints for b in route.backends)
    return lines, served


def _sticky_rule(wire: Any, key: str, route: Route) -> dict[str, str] | None:
    """The compiled sessionPersistence of the route's rule, read from the wire entry."""
    for item in wire["services"][key]["routes"]:
        if item.get("route") == route.route and item.get("rule") == route.rule:
            sticky = item.get("sessionPersistence")
            return dict(sticky) if isinstance(sticky, dict) and sticky else None
    return None
