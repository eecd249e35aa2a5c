"""Resource kinds: metadata envelope and the spec of every kind.

Adding a kind: write its spec class here (or in its own module) and register it in kinds.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gossamer.model.common import (
    DNSLabel,
    Duration,
    Labels,
    Port,
    ServiceRef,
    Strict,
    duration_seconds,
)
from gossamer.model.regex import check_regex


class Metadata(Strict):
    name: DNSLabel
    namespace: DNSLabel = "default"
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # Written by the system; accepted on input so `get -o yaml | apply -f -` round-trips.
    uid: str | None = None
    creationTimestamp: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None


# --- Service --------------------------------------------------------------------------------


class ServicePort(Strict):
    name: DNSLabel | None = None
    port: Port
    protocol: Literal["HTTP", "HTTP2", "TCP", "GRPC"] = "HTTP"


class ServiceSpec(Strict):
    ports: list[ServicePort] = Field(default_factory=list)
    protocol: Literal["HTTP", "HTTP2", "TCP", "GRPC"] = "HTTP"
    labels: Labels = Field(default_factory=dict)


# --- Instance -------------------------------------------------------------------------------


class InstanceSpec(Strict):
    service: DNSLabel
    address: str = Field(min_length=1, max_length=253)
    port: Port  # the sidecar's inbound port: where mesh traffic for this instance goes
    appPort: Port | None = None
    statsPort: Port | None = None  # the sidecar's stats listener (/metrics), same address
    labels: Labels = Field(default_factory=dict)
    proxy: str | None = None  # id of the owning proxy
    leaseSeconds: float = Field(default=10.0, gt=0, le=3600)


# --- HTTPRoute (Gateway API shape) ----------------------------------------------------------


class PathMatch(Strict):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = "/"

    @model_validator(mode="after")
    def _path_shape(self) -> PathMatch:
        if self.type != "RegularExpression" and not self.value.startswith("/"):
            raise ValueError(f"path value must start with '/' for type {self.type}")
        if self.type == "PathPrefix" and len(self.value) > 1 and self.value.endswith("/"):
            # Gateway API: trailing slash is ignored for prefix matching; normalise it.
            self.value = self.value.rstrip("/") or "/"
        if self.type == "RegularExpression":
            _regex_field("value", self.value)
        return self


def _regex_field(field: str, pattern: str) -> None:
    try:
        check_regex(pattern)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


class HeaderMatch(Strict):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
    value: str = Field(max_length=4096)

    @model_validator(mode="after")
    def _regex(self) -> HeaderMatch:
        if self.type == "RegularExpression":
            _regex_field("value", self.value)
        return self


class QueryParamMatch(Strict):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str = Field(min_length=1, max_length=256)
    value: str = Field(max_length=1024)

    @model_validator(mode="after")
    def _regex(self) -> QueryParamMatch:
        if self.type == "RegularExpression":
            _regex_field("value", self.value)
        return self


HTTPMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]


class RouteMatch(Strict):
    path: PathMatch | None = None
    headers: list[HeaderMatch] = Field(default_factory=list)
    queryParams: list[QueryParamMatch] = Field(default_factory=list)
    method: HTTPMethod | None = None


class HeaderValue(Strict):
    name: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
    # No CR, LF or NUL: a value is written into a message head as it is.
    value: str = Field(max_length=4096, pattern=r"^[^\r\n\x00]*$")


# Fields that frame or manage the connection: a filter that changed them would corrupt the
# message, so they are refused (the sidecar also never applies them).
_FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
     "trailer", "proxy-connection"}
)  # fmt: skip


class HeaderModifier(Strict):
    set: list[HeaderValue] = Field(default_factory=list)
    add: list[HeaderValue] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_framing_headers(self) -> HeaderModifier:
        names = [h.name for h in self.set] + [h.name for h in self.add] + self.remove
        for name in names:
            if name.lower() in _FRAMING_HEADERS:
                raise ValueError(f"header {name!r} frames the message and cannot be modified")
        return self


class PathModifier(Strict):
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    replaceFullPath: str | None = None
    replacePrefixMatch: str | None = None

    @model_validator(mode="after")
    def _value_for_type(self) -> PathModifier:
        field = self.type[0].lower() + self.type[1:]
        value = getattr(self, field)
        if value is None:
            raise ValueError(f"path modifier of type {self.type} needs its '{field}' field")
        if not value.startswith("/") or any(c in value for c in "\r\n\x00 ?#"):
            raise ValueError(f"{field} must be a path starting with '/', got {value!r}")
        return self


class RedirectFilter(Strict):
    scheme: Literal["http", "https"] | None = None
    hostname: str | None = None
    path: PathModifier | None = None
    port: Port | None = None
    statusCode: Literal[301, 302, 303, 307, 308] = 302


class URLRewriteFilter(Strict):
    hostname: str | None = None
    path: PathModifier | None = None


class MirrorFilter(Strict):
    backendRef: ServiceRef
    percent: int = Field(default=100, ge=0, le=100)


class FaultDelay(Strict):
    fixedDelay: Duration
    percent: float = Field(default=100, ge=0, le=100)


class FaultAbort(Strict):
    httpStatus: int = Field(ge=200, le=599)
    percent: float = Field(default=100, ge=0, le=100)


class FaultFilter(Strict):
    """gossamer extension (after Istio's HTTPFaultInjection): delay and/or abort a share of
    requests, applied by the calling sidecar, for resilience testing."""

    delay: FaultDelay | None = None
    abort: FaultAbort | None = None

    @model_validator(mode="after")
    def _something(self) -> FaultFilter:
        if self.delay is None and self.abort is None:
            raise ValueError("a fault needs 'delay', 'abort' or both")
        if self.delay is not None and duration_seconds(self.delay.fixedDelay) > 3600:
            raise ValueError("fault delay.fixedDelay must be at most 1h")
        return self


def filter_field(kind: str) -> str:
    """The field holding a filter's configuration: ``URLRewrite`` -> ``urlRewrite``."""
    return "urlRewrite" if kind == "URLRewrite" else kind[0].lower() + kind[1:]


class RouteFilter(Strict):
    type: Literal[
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestRedirect",
        "URLRewrite",
        "RequestMirror",
        "Fault",
    ]
    requestHeaderModifier: HeaderModifier | None = None
    responseHeaderModifier: HeaderModifier | None = None
    requestRedirect: RedirectFilter | None = None
    urlRewrite: URLRewriteFilter | None = None
    requestMirror: MirrorFilter | None = None
    fault: FaultFilter | None = None

    @model_validator(mode="after")
    def _config_matches_type(self) -> RouteFilter:
        field = filter_field(self.type)
        if getattr(self, field) is None:
            raise ValueError(f"filter of type {self.type} needs its '{field}' field")
        return self


class BackendRef(ServiceRef):
    weight: int = Field(default=1, ge=0, le=1_000_000)
    # gossamer extension: a subset of the service's instances, selected by instance labels.
    labels: Labels = Field(default_factory=dict)
    filters: list[RouteFilter] = Field(default_factory=list)

    @field_validator("filters")
    @classmethod
    def _backend_filters(cls, filters: list[RouteFilter]) -> list[RouteFilter]:
        # Redirects decide per rule and mirrors copy per rule: not per backend.
        for f in filters:
            if f.type in ("RequestRedirect", "RequestMirror"):
                raise ValueError(f"{f.type} is a rule filter, not allowed on a backendRef")
        _one_of_each(filters)
        return filters


def _one_of_each(filters: list[RouteFilter]) -> None:
    """Gateway API: each filter type at most once (RequestMirror excepted), and a redirect
    cannot be combined with a rewrite."""
    kinds = [f.type for f in filters if f.type != "RequestMirror"]
    for kind in set(kinds):
        if kinds.count(kind) > 1:
            raise ValueError(f"filter type {kind} is given more than once")
    if "RequestRedirect" in kinds and "URLRewrite" in kinds:
        raise ValueError("RequestRedirect and URLRewrite cannot be combined in one rule")


class RouteTimeouts(Strict):
    request: Duration | None = None
    backendRequest: Duration | None = None


class RouteRetry(Strict):
    attempts: int = Field(default=2, ge=0, le=10)
    backoff: Duration | None = None
    codes: list[int] = Field(default_factory=lambda: [502, 503, 504])

    @field_validator("codes")
    @classmethod
    def _codes_are_5xx(cls, codes: list[int]) -> list[int]:
        for code in codes:
            if not 500 <= code <= 599:
                raise ValueError(f"retriable status codes must be 500-599, got {code}")
        return codes


class SessionPersistence(Strict):
    """Sticky assignment, after the Gateway API's SessionPersistence: the value of this
    cookie or header is hashed to a point in [0, 1) that picks the weighted backend, so one
    user stays in one variant on every sidecar, and widening a backend only moves users to it."""

    type: Literal["Cookie", "Header"] = "Cookie"
    sessionName: str = Field(
        min_length=1, max_length=256, pattern=r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"
    )


class RouteRule(Strict):
    name: DNSLabel | None = None
    matches: list[RouteMatch] = Field(default_factory=lambda: [RouteMatch(path=PathMatch())])
    filters: list[RouteFilter] = Field(default_factory=list)
    backendRefs: list[BackendRef] = Field(default_factory=list)
    timeouts: RouteTimeouts | None = None
    retry: RouteRetry | None = None
    sessionPersistence: SessionPersistence | None = None

    @model_validator(mode="after")
    def _weights(self) -> RouteRule:
        if self.backendRefs and all(b.weight == 0 for b in self.backendRefs):
            raise ValueError("backendRefs weights are all zero: at least one must be positive")
        return self

    @model_validator(mode="after")
    def _filters(self) -> RouteRule:
        _one_of_each(self.filters)
        modifiers = [f.requestRedirect.path if f.requestRedirect else None for f in self.filters]
        modifiers += [f.urlRewrite.path if f.urlRewrite else None for f in self.filters]
        for ref in self.backendRefs:
            modifiers += [f.urlRewrite.path if f.urlRewrite else None for f in ref.filters]
        if any(m is not None and m.type == "ReplacePrefixMatch" for m in modifiers):
            for match in self.matches:
                if match.path is not None and match.path.type != "PathPrefix":
                    raise ValueError("ReplacePrefixMatch needs every match to be a PathPrefix")
        return self


class ParentRef(Strict):
    group: str | None = None
    kind: Literal["Service", "Gateway"] = "Service"
    name: DNSLabel
    namespace: DNSLabel | None = None
    port: Port | None = None
    sectionName: str | None = None


class HTTPRouteSpec(Strict):
    parentRefs: list[ParentRef] = Field(min_length=1)
    hostnames: list[str] = Field(default_factory=list)
    rules: list[RouteRule] = Field(default_factory=lambda: [RouteRule()])


# --- TrafficPolicy (after Gateway API BackendTrafficPolicy / BackendLBPolicy) --------------


class HashOn(Strict):
    header: str | None = None
    cookie: str | None = None

    @model_validator(mode="after")
    def _one(self) -> HashOn:
        if (self.header is None) == (self.cookie is None):
            raise ValueError("hashOn needs exactly one of 'header' or 'cookie'")
        return self


class LoadBalancer(Strict):
    type: Literal["P2CPeakEWMA", "RoundRobin", "LeastRequest", "ConsistentHash"] = "P2CPeakEWMA"
    hashOn: HashOn | None = None
    defaultRTT: Duration = "30ms"
    decay: Duration = "10s"

    @model_validator(mode="after")
    def _hash_needs_key(self) -> LoadBalancer:
        if self.type == "ConsistentHash" and self.hashOn is None:
            raise ValueError("type ConsistentHash needs 'hashOn' (a header or a cookie)")
        return self


class PolicyTimeouts(Strict):
    connect: Duration = "5s"
    request: Duration = "15s"
    idle: Duration = "60s"


class RetryBudget(Strict):
    percent: int = Field(default=20, ge=0, le=100)
    interval: Duration = "10s"


class MinRetryRate(Strict):
    count: int = Field(default=10, ge=0)
    interval: Duration = "1s"


class RetryConstraint(Strict):
    budget: RetryBudget = Field(default_factory=RetryBudget)
    minRetryRate: MinRetryRate = Field(default_factory=MinRetryRate)


class OutlierDetection(Strict):
    consecutiveErrors: int = Field(default=5, ge=1)
    baseEjectionTime: Duration = "30s"
    maxEjectionPercent: int = Field(default=50, ge=0, le=100)


class ConnectionLimits(Strict):
    maxConnections: int = Field(default=1024, ge=1)
    maxPendingRequests: int = Field(default=1024, ge=0)
    maxRequests: int = Field(default=1024, ge=1)


class TrafficPolicySpec(Strict):
    targetRefs: list[ServiceRef] = Field(min_length=1)
    loadBalancer: LoadBalancer = Field(default_factory=LoadBalancer)
    timeouts: PolicyTimeouts = Field(default_factory=PolicyTimeouts)
    retryConstraint: RetryConstraint = Field(default_factory=RetryConstraint)
    outlierDetection: OutlierDetection = Field(default_factory=OutlierDetection)
    connectionLimits: ConnectionLimits = Field(default_factory=ConnectionLimits)


# --- MeshConfig (one per mesh, named "default") ---------------------------------------------


class MeshConfigSpec(Strict):
    # Istio's names: ALLOW_ANY passes hosts outside the mesh through; REGISTRY_ONLY refuses them.
    outboundTrafficPolicy: Literal["ALLOW_ANY", "REGISTRY_ONLY"] = "ALLOW_ANY"


def empty_status() -> dict[str, Any]:
    return {}
