"""The sidecar's lean, immutable view of the mesh, built from the snapshot stream.

    snap = Snapshot.from_wire(first_line, namespace="default")
    snap = snap.apply(delta_line)             # a new Snapshot; the old one is untouched
    view = snap.lookup("reviews.default:9080")

Everything a request needs is precomputed here: compiled routes with their backends
resolved to endpoint sets (``Backend``) and a balancer per set. A delta rebuilds only the
services it names plus those whose routes point at them; every other ``ServiceView`` is
the same object as before. Per-endpoint state (balancer load, outlier ejection) is carried
over by endpoint id, so an update never forgets that an endpoint is slow or ejected.
Malformed input raises ValueError naming the field, at load, never on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gossamer.proxy.authz import Policy as AuthzPolicy
from gossamer.proxy.authz import parse_policies
from gossamer.proxy.balance import Balancer, EndpointLoad, make_balancer
from gossamer.proxy.resilience import Limits, OutlierDetector, OutlierState, RetryBudget
from gossamer.proxy.routing import (
    Route,
    _int,
    _labels,
    _list,
    _mapping,
    _number,
    _or,
    _service_key,
    _str,
    compile_route,
)

OUTBOUND_POLICIES = ("ALLOW_ANY", "REGISTRY_ONLY")
_LB_TYPES = ("P2CPeakEWMA", "RoundRobin", "LeastRequest", "ConsistentHash")
CLUSTER_DOMAIN = "svc.cluster.local"


class Endpoint:
    """A healthy instance. ``load`` and ``outlier`` are mutable state shared by every
    subset holding this endpoint and carried into later snapshots (same id and address)."""

    __slots__ = ("address", "id", "labels", "load", "outlier", "port")

    def __init__(self, id: str, address: str, port: int, labels: dict[str, str]) -> None:
        self.id = id
        self.address = address
        self.port = port
        self.labels = labels
        self.load = EndpointLoad()
        self.outlier = OutlierState()

    def __repr__(self) -> str:
        return f"Endpoint({self.id!r}, {self.address}:{self.port})"


class LbPolicy:
    __slots__ = ("decay", "default_rtt", "hash_cookie", "hash_header", "type")

    def __init__(
        self,
        type: str = "P2CPeakEWMA",
        default_rtt: float = 0.03,
        decay: float = 10.0,
        hash_header: bytes | None = None,
        hash_cookie: bytes | None = None,
    ) -> None:
        self.type = type
        self.default_rtt = default_rtt
        self.decay = decay
        self.hash_header = hash_header  # lower-case, as httptools hands header names over
        self.hash_cookie = hash_cookie


class Policy:
    """The service's TrafficPolicy with defaults filled in; durations in seconds."""

    __slots__ = (
        "budget_interval",
        "budget_min_per_second",
        "budget_percent",
        "connect_timeout",
        "idle_timeout",
        "lb",
        "max_connections",
        "max_ejection_percent",
        "max_pending",
        "max_requests",
        "outlier_base_ejection",
        "outlier_consecutive",
        "request_timeout",
    )

    def __init__(self) -> None:
        self.lb = LbPolicy()
        self.connect_timeout = 5.0
        self.request_timeout = 15.0
        self.idle_timeout = 60.0
        self.budget_percent = 20.0
        self.budget_interval = 10.0
        self.budget_min_per_second = 10.0
        self.outlier_consecutive = 5
        self.outlier_base_ejection = 30.0
        self.max_ejection_percent = 50
        self.max_connections = 1024
        self.max_pending = 1024
        self.max_requests = 1024


class Backend:
    """An endpoint set (a service, or the subset of it whose labels include ``labels``)
    with its balancer and the target service's outlier detector, limits and policy."""

    __slots__ = (
        "balancer",
        "endpoints",
        "key",
        "labels",
        "limits",
        "missing",
        "outlier",
        "policy",
    )

    def __init__(self, view: ServiceView, labels: dict[str, str]) -> None:
        self.key = view.key
        self.labels = labels
        items = labels.items()
        self.endpoints = tuple(ep for ep in view.endpoints if items <= ep.labels.items())
        self.policy = view.policy
        self.balancer: Balancer = make_balancer(view.policy.lb, self.endpoints)
        self.outlier = view.outlier
        self.limits = view.limits
        # The control plane said the service does not exist (a route names a missing one).
        self.missing = not view.exists


class ServiceView:
    """One service as the sidecar sees it."""

    __slots__ = (
        "_backends",
        "_subsets",
        "authz",
        "default_backend",
        "depends",
        "endpoints",
        "exists",
        "header_names",
        "key",
        "limits",
        "mtls",
        "name",
        "namespace",
        "needs_query",
        "outlier",
        "policy",
        "protocol",
        "retry_budget",
        "routes",
    )

    key: str
    name: str
    namespace: str
    exists: bool
    protocol: str
    endpoints: tuple[Endpoint, ...]
    policy: Policy
    outlier: OutlierDetector
    limits: Limits
    retry_budget: RetryBudget
    routes: tuple[Route, ...]
    authz: tuple[AuthzPolicy, ...]  # AuthorizationPolicies selecting this service
    mtls: str  # "STRICT" | "PERMISSIVE"
    header_names: frozenset[bytes]
    needs_query: bool
    depends: frozenset[str]
    default_backend: Backend
    _subsets: dict[tuple[tuple[str, str], ...], Backend]
    _backends: dict[tuple[str, tuple[tuple[str, str], ...]], Backend]

    def subset(self, labels: Mapping[str, str]) -> Backend:
        """This service's endpoints carrying ``labels`` (memoised: one balancer per subset)."""
        labels_key = tuple(sorted(labels.items()))
        backend = self._subsets.get(labels_key)
        if backend is None:
            backend = self._subsets[labels_key] = Backend(self, dict(labels))
        return backend

    def backend(self, key: str, labels: Mapping[str, str] | None = None) -> Backend | None:
        """The endpoint set of a service this view's routes (or mirrors) name, or of the
        service itself; None for a key the routes do not name."""
        return self._backends.get((key, tuple(sorted((labels or {}).items()))))

    def __repr__(self) -> str:
        return (
            f"ServiceView({self.key!r}, endpoints={len(self.endpoints)}, routes={len(self.routes)})"
        )


def _build_view(key: str, wire: Any, previous: ServiceView | None) -> ServiceView:
    field = f"services[{key!r}]"
    entry = _mapping(wire, field)
    view = ServiceView()
    view.key = key
    namespace, _, name = key.partition("/")
    view.name = _str(entry.get("name", name), f"{field}.name").lower()
    view.namespace = _str(entry.get("namespace", namespace), f"{field}.namespace").lower()
    if (view.namespace, view.name) != (namespace.lower(), name.lower()):
        raise ValueError(f"{field}: name/namespace {view.namespace}/{view.name} differ from key")
    exists = entry.get("exists", True)
    if not isinstance(exists, bool):
        raise ValueError(f"{field}.exists: expected true or false, got {exists!r}")
    view.exists = exists
    view.protocol = _str(entry.get("protocol", "HTTP"), f"{field}.protocol")
    view.policy = _policy(entry.get("policy"), f"{field}.policy")
    view.authz = parse_policies(entry.get("authz"), f"{field}.authz")  # for our own inbound
    view.mtls = _str(entry.get("mtls", "STRICT"), f"{field}.mtls")

    old = {ep.id: ep for ep in previous.endpoints} if previous is not None else {}
    endpoints = []
    seen: set[str] = set()
    for i, raw in enumerate(_list(_or(entry.get("endpoints"), []), f"{field}.endpoints")):
        ef = f"{field}.endpoints[{i}]"
        e = _mapping(raw, ef)
        ep_id = _str(e.get("id"), f"{ef}.id")
        if ep_id in seen:
            raise ValueError(f"{ef}.id: duplicate endpoint id {ep_id!r}")
        seen.add(ep_id)
        port = _int(e.get("port"), f"{ef}.port")
        if not 0 < port < 65536:
            raise ValueError(f"{ef}.port: {port} is not a TCP port (1-65535)")
        ep = Endpoint(
            ep_id,
            _str(e.get("address"), f"{ef}.address"),
            port,
            _labels(_or(e.get("labels"), {}), f"{ef}.labels"),
        )
        before = old.get(ep_id)
        if before is not None and (before.address, before.port) == (ep.address, ep.port):
            ep.load, ep.outlier = before.load, before.outlier
        endpoints.append(ep)
    view.endpoints = tuple(endpoints)

    p = view.policy
    view.outlier = OutlierDetector(
        p.outlier_consecutive,
        p.outlier_base_ejection,
        p.max_ejection_percent,
        endpoints=view.endpoints,
    )
    if previous is not None:
        # Same counters object: requests in flight release what they acquired.
        view.limits = previous.limits
        view.limits.reconfigure(p.max_connections, p.max_pending, p.max_requests)
        budget = previous.retry_budget
        same_budget = (budget.ratio, budget.min_per_second, budget.interval) == (
            p.budget_percent / 100.0,
            p.budget_min_per_second,
            p.budget_interval,
        )
    else:
        view.limits = Limits(p.max_connections, p.max_pending, p.max_requests)
        same_budget = False
    view.retry_budget = (
        previous.retry_budget
        if previous is not None and same_budget
        else RetryBudget(p.budget_percent, p.budget_min_per_second, p.budget_interval)
    )
    routes = tuple(
        compile_route(r, f"{field}.routes[{i}]")
        for i, r in enumerate(_list(_or(entry.get("routes"), []), f"{field}.routes"))
    )
    view.routes = routes  # not linked yet: _link resolves their backends
    view.header_names = frozenset(name for r in routes for name, _, _ in r.headers)
    view.needs_query = any(r.query for r in routes)
    depends = {key}
    for r in routes:
        depends.update(service for service, _, _ in r.backend_specs)
        depends.update(service for service, _ in r.mirror_specs)
    view.depends = frozenset(depends)
    view._subsets = {}
    return view


def _link(view: ServiceView, services: Mapping[str, ServiceView]) -> ServiceView:
    """Resolve the view's backends against ``services``; a fresh object if already linked."""
    if hasattr(view, "default_backend"):
        linked = ServiceView()
        for slot in ServiceView.__slots__:
            setattr(linked, slot, getattr(view, slot))
        view = linked
    table: dict[tuple[str, tuple[tuple[str, str], ...]], Backend] = {}

    def resolve(key: str, labels: dict[str, str]) -> Backend:
        labels_key = tuple(sorted(labels.items()))
        backend = table.get((key, labels_key))
        if backend is None:
            target = services.get(key)
            if target is None:
                # Named but not (yet) in the view: an empty set answers 503 until it arrives.
                target = _missing_view(key)
                backend = target.subset(labels)
                backend.missing = False  # not known missing: 503 until its entry arrives
            else:
                backend = target.subset(labels)
            table[(key, labels_key)] = backend
        return backend

    view.default_backend = resolve(view.key, {})
    view.routes = tuple(r.linked(resolve) for r in view.routes)
    view._backends = table
    return view


def route_view(key: str, entry: Any, services: Mapping[str, ServiceView]) -> ServiceView:
    """A view built from an ENTRY that is not in the stream (a gateway's virtual host: its
    routes), its backends resolved against ``services`` (a snapshot's)."""
    return _link(_build_view(key, entry, None), services)


def _missing_view(key: str) -> ServiceView:
    return _build_view(key, {"exists": False}, None)


def _policy(wire: Any, field: str) -> Policy:
    p = Policy()
    if wire is None:
        return p
    w = _mapping(wire, field)
    lb = _mapping(_or(w.get("lb"), {}), f"{field}.lb")
    lb_type = lb.get("type", "P2CPeakEWMA")
    if lb_type not in _LB_TYPES:
        raise ValueError(f"{field}.lb.type: {lb_type!r} is not one of {', '.join(_LB_TYPES)}")
    hash_on = lb.get("hashOn")
    header = cookie = None
    if hash_on is not None:
        h = _mapping(hash_on, f"{field}.lb.hashOn")
        if h.get("header") is not None:
            header = _str(h["header"], f"{field}.lb.hashOn.header").lower().encode("latin-1")
        elif h.get("cookie") is not None:
            cookie = _str(h["cookie"], f"{field}.lb.hashOn.cookie").encode("latin-1")
    p.lb = LbPolicy(
        lb_type,
        _positive(lb.get("defaultRTT", 0.03), f"{field}.lb.defaultRTT"),
        _positive(lb.get("decay", 10.0), f"{field}.lb.decay"),
        header,
        cookie,
    )
    t = _mapping(_or(w.get("timeouts"), {}), f"{field}.timeouts")
    p.connect_timeout = _positive(t.get("connect", 5.0), f"{field}.timeouts.connect")
    p.request_timeout = _positive(t.get("request", 15.0), f"{field}.timeouts.request")
    p.idle_timeout = _positive(t.get("idle", 60.0), f"{field}.timeouts.idle")
    b = _mapping(_or(w.get("retryBudget"), {}), f"{field}.retryBudget")
    p.budget_percent = _number(b.get("percent", 20), f"{field}.retryBudget.percent")
    p.budget_interval = _positive(b.get("interval", 10.0), f"{field}.retryBudget.interval")
    p.budget_min_per_second = _number(
        b.get("minRetriesPerSecond", 10), f"{field}.retryBudget.minRetriesPerSecond"
    )
    o = _mapping(_or(w.get("outlier"), {}), f"{field}.outlier")
    p.outlier_consecutive = _int(
        o.get("consecutiveErrors", 5), f"{field}.outlier.consecutiveErrors"
    )
    p.outlier_base_ejection = _number(
        o.get("baseEjectionTime", 30.0), f"{field}.outlier.baseEjectionTime"
    )
    p.max_ejection_percent = _int(
        o.get("maxEjectionPercent", 50), f"{field}.outlier.maxEjectionPercent"
    )
    limits = _mapping(_or(w.get("limits"), {}), f"{field}.limits")
    p.max_connections = _int(limits.get("maxConnections", 1024), f"{field}.limits.maxConnections")
    p.max_pending = _int(
        limits.get("maxPendingRequests", 1024), f"{field}.limits.maxPendingRequests"
    )
    p.max_requests = _int(limits.get("maxRequests", 1024), f"{field}.limits.maxRequests")
    return p


def _positive(value: Any, field: str) -> float:
    number = _number(value, field)
    if number <= 0:
        raise ValueError(f"{field}: expected seconds > 0, got {value!r}")
    return number


def _host_forms(view: ServiceView, default_namespace: str) -> list[str]:
    name, namespace = view.name, view.namespace
    forms = [
        f"{name}.{namespace}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}.{CLUSTER_DOMAIN}",
    ]
    if namespace == default_namespace:
        forms.append(name)
    return forms


def normalize_host(host: str) -> str:
    """Lower-case, without ``:port`` and without a trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal: never a mesh name
        return host
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        host = name
    return host.rstrip(".")


def service_key_for_host(host: str, namespace: str = "default") -> str | None:
    """The service key (``ns/name``) a mesh-shaped host names, or None for other hosts:
    ``name``, ``name.ns``, ``name.ns.svc``, ``name.ns.svc.cluster.local``."""
    labels = normalize_host(host).split(".")
    if len(labels) == 1 and labels[0]:
        return f"{namespace}/{labels[0]}"
    if len(labels) == 2 or (len(labels) == 3 and labels[2] == "svc"):
        return f"{labels[1]}/{labels[0]}" if labels[0] and labels[1] else None
    if len(labels) == 5 and ".".join(labels[2:]) == CLUSTER_DOMAIN:
        return f"{labels[1]}/{labels[0]}" if labels[0] and labels[1] else None
    return None


class Snapshot:
    __slots__ = ("_hosts", "mesh", "namespace", "outbound_policy", "services", "version")

    def __init__(
        self,
        version: int,
        outbound_policy: str,
        services: dict[str, ServiceView],
        namespace: str,
        mesh: dict[str, Any],
    ) -> None:
        self.version = version
        self.outbound_policy = outbound_policy
        self.services = services  # key "ns/name" -> ServiceView; read-only
        self.namespace = namespace
        self.mesh = mesh
        hosts: dict[str, ServiceView] = {}
        for view in services.values():
            for form in _host_forms(view, namespace):
                hosts[form] = view
        self._hosts = hosts

    @classmethod
    def from_wire(cls, msg: Any, namespace: str = "default") -> Snapshot:
        """A snapshot from a ``"snapshot"`` line; ``namespace`` is the proxy's own, used
        for bare names (``reviews``)."""
        m = _mapping(msg, "snapshot")
        if m.get("type") != "snapshot":
            raise ValueError(f"type: expected 'snapshot', got {m.get('type')!r}")
        _check_protocol(m)
        version = _int(m.get("version"), "version")
        mesh = dict(_mapping(_or(m.get("mesh"), {}), "mesh"))
        services: dict[str, ServiceView] = {}
        for key, entry in _mapping(_or(m.get("services"), {}), "services").items():
            key = _service_key(key, "services").lower()
            services[key] = _build_view(key, entry, None)
        linked = {key: _link(view, services) for key, view in services.items()}
        return cls(version, _outbound(mesh), linked, namespace.lower(), mesh)

    def apply(self, msg: Any) -> Snapshot:
        """A new snapshot with a ``"delta"`` line applied; this one is left untouched."""
        m = _mapping(msg, "delta")
        if m.get("type") != "delta":
            raise ValueError(f"type: expected 'delta', got {m.get('type')!r}")
        _check_protocol(m)
        version = _int(m.get("version"), "version")
        mesh = self.mesh
        if m.get("mesh") is not None:
            mesh = {**mesh, **_mapping(m["mesh"], "mesh")}
        services = dict(self.services)
        changed: set[str] = set()
        for i, key in enumerate(_list(_or(m.get("removed"), []), "removed")):
            key = _service_key(key, f"removed[{i}]").lower()
            services.pop(key, None)
            changed.add(key)
        rebuilt: dict[str, ServiceView] = {}
        for key, entry in _mapping(_or(m.get("services"), {}), "services").items():
            key = _service_key(key, "services").lower()
            rebuilt[key] = _build_view(key, entry, self.services.get(key))
            changed.add(key)
        services.update(rebuilt)
        for key, view in services.items():
            if key in rebuilt or not view.depends.isdisjoint(changed):
                services[key] = _link(view, services)
        return Snapshot(version, _outbound(mesh), services, self.namespace, mesh)

    def lookup(self, host: str) -> ServiceView | None:
        """The service ``host`` names (any mesh form, any case, with or without ``:port``),
        or None when it is not in this view."""
        view = self._hosts.get(host)
        if view is None:
            view = self._hosts.get(normalize_host(host))
        return view

    def key_for_host(self, host: str) -> str | None:
        """The key to ask on-demand discovery for, or None when ``host`` is not mesh-shaped."""
        return service_key_for_host(host, self.namespace)

    def backend(self, key: str, labels: Mapping[str, str] | None = None) -> Backend | None:
        """The endpoint set of any service in the view (or a label subset of it)."""
        view = self.services.get(key)
        return view.subset(labels or {}) if view is not None else None


def _check_protocol(m: Mapping[str, Any]) -> None:
    protocol = m.get("protocol", 1)
    if protocol != 1:
        raise ValueError(f"protocol: this sidecar speaks protocol 1, got {protocol!r}")


def _outbound(mesh: Mapping[str, Any]) -> str:
    policy = mesh.get("outboundTrafficPolicy", "ALLOW_ANY")
    if policy not in OUTBOUND_POLICIES:
        raise ValueError(
            f"mesh.outboundTrafficPolicy: {policy!r} is not one of {', '.join(OUTBOUND_POLICIES)}"
        )
    return str(policy)
