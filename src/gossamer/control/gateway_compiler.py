"""The gateway's view: a Gateway, the HTTPRoutes attached to it, their policies. Pure.

    view = compile_gateway(docs, "default", "edge", replicas=2)

`docs` maps a kind to its stored documents. Routes are compiled with the sidecar's route
compiler (same wire shape as ENTRY routes), grouped per listener by the hostnames that
result from intersecting the listener's hostname with the route's (Gateway API):

    {"name", "namespace", "replicas",
     "listeners": [{"name", "port", "protocol", "hostname", "httpsRedirect", "hstsMaxAge",
                    "certificates": [{"cert": PATH, "key": PATH} | {"certPem", "keyPem"}],
                    "hosts": {"api.example.com" | "*.example.com" | "*": [ROUTE, ...]},
                    "auth": {route key: policy key}, "rateLimit": {route key: policy key}}],
     "authPolicies": {key: spec}, "rateLimitPolicies": {key: spec}, "services": [keys]}

Policies attach to an HTTPRoute, a Gateway listener (sectionName) or the whole Gateway;
the most specific wins (route, then listener, then gateway), the oldest on a tie.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gossamer.control.compiler import compile_routes
from gossamer.control.state import Attached

Doc = Mapping[str, Any]
Docs = Mapping[str, list[dict[str, Any]]]


def _key(doc: Doc) -> str:
    meta = doc.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta['name']}"


def _age(doc: Doc) -> tuple[str, str]:
    meta = doc.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or "~"), _key(doc))


def intersect(listener_host: str | None, route_host: str) -> str | None:
    """The hostname a route serves on a listener, or None when they do not overlap."""
    if listener_host is None:
        return route_host
    if route_host == listener_host:
        return route_host
    if listener_host.startswith("*."):
        if not route_host.startswith("*.") and route_host.endswith(listener_host[1:]):
            return route_host
        if route_host.startswith("*.") and route_host.endswith(listener_host[1:]):
            return route_host  # the route's wildcard is the narrower one
    if route_host.startswith("*.") and listener_host.endswith(route_host[1:]):
        return listener_host
    return None


def _attaches(route: Doc, gw_ns: str, gw_name: str, listener: str) -> bool:
    ns = (route.get("metadata") or {}).get("namespace", "default")
    for ref in (route.get("spec") or {}).get("parentRefs") or ():
        if ref.get("kind", "Service") != "Gateway" or ref.get("name") != gw_name:
            continue
        if (ref.get("namespace") or ns) != gw_ns:
            continue
        section = ref.get("sectionName")
        if section is None or section == listener:
            return True
    return False


def _attached(route: Doc) -> Attached:
    meta = route.get("metadata") or {}
    return Attached(
        namespace=meta.get("namespace", "default"),
        name=meta["name"],
        age=(0.0, 0),
        services=frozenset(),
        spec=dict(route.get("spec") or {}),
    )


def _policy_for(
    policies: Sequence[Doc], gw: tuple[str, str], listener: str, route_key: str
) -> str | None:
    """The most specific policy for a route on a listener (route > listener > gateway)."""
    best: tuple[int, tuple[str, str]] | None = None
    chosen = None
    for doc in policies:
        ns = (doc.get("metadata") or {}).get("namespace", "default")
        for ref in (doc.get("spec") or {}).get("targetRefs") or ():
            rank = None
            if ref.get("kind") == "HTTPRoute" and f"{ns}/{ref.get('name')}" == route_key:
                rank = 0
            elif ref.get("kind") == "Gateway" and (ns, ref.get("name")) == gw:
                section = ref.get("sectionName")
                rank = 1 if section == listener else 2 if section is None else None
            if rank is not None and (best is None or (rank, _age(doc)) < best):
                best, chosen = (rank, _age(doc)), _key(doc)
    return chosen


def _certificates(listener: Doc, secrets: Mapping[str, Doc], ns: str) -> list[dict[str, str]]:
    out = []
    for ref in (listener.get("tls") or {}).get("certificateRefs") or ():
        if ref.get("kind", "File") == "File":
            out.append({"cert": ref["cert"], "key": ref["key"]})
            continue
        secret = secrets.get(f"{ns}/{ref['name']}")
        if secret is not None:
            spec = secret.get("spec") or {}
            out.append({"certPem": spec["cert"], "keyPem": spec["key"]})
    return out


def _services(routes: Iterable[Mapping[str, Any]]) -> set[str]:
    keys: set[str] = set()
    for route in routes:
        keys.update(b["service"] for b in route["backends"] if "invalid" not in b)
        for flt in route["filters"]:
            if flt["type"] == "RequestMirror":
                keys.add(flt["requestMirror"]["service"])
    return keys


def compile_gateway(
    docs: Docs, namespace: str, name: str, replicas: int = 1
) -> dict[str, Any] | None:
    """The gateway's whole view, or None when no such Gateway exists."""
    gateway = next((d for d in docs.get("Gateway", ()) if _key(d) == f"{namespace}/{name}"), None)
    if gateway is None:
        return None
    gw_key = f"{namespace}/{name}"
    routes = sorted(docs.get("HTTPRoute", ()), key=_age)
    auth = sorted(docs.get("AuthPolicy", ()), key=_age)
    limits = sorted(docs.get("RateLimitPolicy", ()), key=_age)
    secrets = {_key(d): d for d in docs.get("Secret", ())}
    listeners, used_auth, used_limits, services = [], set(), set(), set()
    for listener in (gateway.get("spec") or {}).get("listeners") or ():
        lname, lhost = listener["name"], listener.get("hostname")
        by_host: dict[str, list[Doc]] = {}
        for route in routes:
            if not _attaches(route, namespace, name, lname):
                continue
            hostnames = (route.get("spec") or {}).get("hostnames") or [lhost or "*"]
            for host in hostnames:
                served = host if host == "*" else intersect(lhost, host)
                if served is not None:
                    by_host.setdefault(served, []).append(route)
        hosts = {}
        for host, attached in sorted(by_host.items()):
            compiled = compile_routes([_attached(r) for r in attached], gw_key)
            for pair in compiled:  # a rule without backends has nowhere to go at the edge
                pair["backends"] = [b for b in pair["backends"] if b["service"] != gw_key]
            hosts[host] = compiled
            services |= _services(compiled)
        attach_auth, attach_limits = {}, {}
        for route_key in sorted({_key(r) for rs in by_host.values() for r in rs}):
            policy = _policy_for(auth, (namespace, name), lname, route_key)
            if policy is not None:
                attach_auth[route_key] = policy
                used_auth.add(policy)
            policy = _policy_for(limits, (namespace, name), lname, route_key)
            if policy is not None:
                attach_limits[route_key] = policy
                used_limits.add(policy)
        listeners.append(
            {
                "name": lname,
                "port": listener["port"],
                "protocol": listener.get("protocol", "HTTP"),
                "hostname": lhost,
                "httpsRedirect": bool(listener.get("httpsRedirect", False)),
                "hstsMaxAge": listener.get("hstsMaxAge"),
                "certificates": _certificates(listener, secrets, namespace),
                "hosts": hosts,
                "auth": attach_auth,
                "rateLimit": attach_limits,
            }
        )
    return {
        "name": name,
        "namespace": namespace,
        "replicas": max(1, replicas),
        "listeners": listeners,
        "authPolicies": {_key(d): d["spec"] for d in auth if _key(d) in used_auth},
        "rateLimitPolicies": {_key(d): d["spec"] for d in limits if _key(d) in used_limits},
        "services": sorted(services),
    }
