"""The gateway's `Target`: edge checks, then the sidecar's outbound routing.

Per request, in order: HTTP->HTTPS redirect; headers an outside client may not set are
dropped (internal `x-gossamer-*`, `X-Forwarded-*` beyond the trusted proxies, headers the
gateway sets from credentials); the path is normalised (400 bad_path); the virtual host
and route are found (404 no_route); the route's AuthPolicy decides (401/403) and its
RateLimitPolicy counts (429); then `OutboundTarget.route_to` does the rest (filters,
weights, retries, balancing, mTLS to the destination sidecar) as in a sidecar.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gossamer.gateway.auth import AuthPolicy, Decision, KeySource
from gossamer.gateway.config import GatewayView, HostTable, ListenerView, normalize_host
from gossamer.gateway.cors import Cors
from gossamer.gateway.ratelimit import Limiter, LimitSpec, client_ip, headers_for
from gossamer.proxy.filters import HeaderOps
from gossamer.proxy.http import errors
from gossamer.proxy.http.exchange import Exchange
from gossamer.proxy.outbound.target import OutboundTarget, Routed, split_target
from gossamer.proxy.paths import PathError, normalise_target
from gossamer.proxy.routing import match_route
from gossamer.proxy.snapshot import ServiceView
from gossamer.proxy.state import SnapshotHolder

UNAUTHENTICATED = "unauthenticated"
FORBIDDEN = "forbidden"
RATE_LIMITED = "rate_limited"
BODY_TOO_LARGE = errors.BODY_TOO_LARGE
CORS_PREFLIGHT = "cors_preflight"
CORS_REFUSED = "cors_refused"
_INTERNAL_PREFIX = b"x-gossamer-"
_FORWARDED = (b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"forwarded")


class Policies:
    """The runtime form of a view's policies (buckets live here, so keep it across
    view updates that leave a policy unchanged)."""

    def __init__(self, view: GatewayView, seconds: Callable[[str], float]) -> None:
        self.auth = {k: AuthPolicy(spec, seconds) for k, spec in view.auth_policies.items()}
        self.limits: dict[str, list[Limiter]] = {}
        for key, spec in view.rate_limit_policies.items():
            limiters = []
            for item in spec["limits"]:
                client = item.get("clientKey") or {}
                limit = LimitSpec(
                    requests=int(item["requests"]),
                    period=seconds(item.get("per", "1s")) or 1.0,
                    burst=int(item.get("burst") or item["requests"]),
                    key_type=client.get("type", "ClientIP"),
                    key_name=str(client.get("name") or "").lower(),
                    trusted_proxies=int(client.get("trustedProxies", 0)),
                )
                limiters.append(Limiter(limit, view.replicas))
            self.limits[key] = limiters
        self.owned = frozenset(h for p in self.auth.values() for h in p.owned_headers)


class GatewayTarget:
    def __init__(
        self,
        holder: SnapshotHolder,
        outbound: OutboundTarget,
        listener: ListenerView,
        state: Any,  # gateway.runtime.GatewayState: view, tables, policies
        task_group: asyncio.TaskGroup,
        fetch: Callable[[str], Awaitable[bytes]],
        trusted_proxies: int = 0,
        https_port: int | None = None,
        max_body: int = 8 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.holder = holder
        self.outbound = outbound
        self.listener = listener
        self.state = state
        self.task_group = task_group
        self.fetch = fetch
        self.trusted_proxies = trusted_proxies
        self.max_body = max_body
        self.https_port = https_port
        self.clock = clock  # wall clock: JWT exp/nbf are epoch seconds
        self.hsts = (
            HeaderOps(
                set=(
                    (
                        b"strict-transport-security",
                        b"max-age=%d; includeSubDomains" % listener.hsts_max_age,
                    ),
                )
            )
            if listener.protocol == "HTTPS" and listener.hsts_max_age
            else None
        )

    # Target -----------------------------------------------------------------------------

    def begin(self, ex: Exchange) -> None:
        head = ex.head
        if self.listener.https_redirect and self.listener.protocol == "HTTP":
            self._redirect(ex)
            return
        if head.content_length is not None and head.content_length > self.max_body:
            ex.fail(413, BODY_TOO_LARGE)  # closes: the body is left unread
            return
        ex.body_limit = self.max_body  # a chunked body: 413 once the streamed bytes pass it
        # Absolute-form (RFC 9112 3.2.2): its authority is the host, whatever Host says.
        authority, origin_form = split_target(head.target)
        try:
            target, path = normalise_target(origin_form)
        except PathError:
            ex.fail(400, errors.BAD_PATH)
            return
        ex.upstream_target = target
        policies: Policies = self.state.policies
        head.headers = self._sanitize(head.headers, ex.client.peer_ip, policies)
        host = normalize_host(authority if authority is not None else head.host)
        table: HostTable | None = self.state.tables.get(self.listener.name)
        _, _, query = target.partition(b"?")
        for view in table.lookup(host) if table is not None else ():
            route = match_route(view, head.method, path, query or None, head.headers)
            if route is not None:
                self._authenticate(ex, view, route.route, host)
                return
        ex.fail(404, errors.NO_ROUTE)

    def _authenticate(self, ex: Exchange, view: ServiceView, route_key: str, host: str) -> None:
        auth_key = self.listener.auth.get(route_key)
        claims: Any = {}
        cors_ops: tuple[HeaderOps, ...] = ()
        if auth_key is not None:
            policy = self.state.policies.auth.get(auth_key)
            if policy is None:
                ex.fail(503, errors.NO_HEALTHY_ENDPOINT)  # policy not loaded yet: fail closed
                return
            if policy.cors is not None:
                cors_ops, answered = self._cors(ex, policy.cors)
                if answered:
                    return
        if auth_key is not None and policy.requires_credentials:
            now = self.clock()
            stale = policy.missing_keys(now)
            if stale:
                self.task_group.create_task(self._load_keys(ex, stale, (view, route_key, host)))
                return
            decision: Decision = policy.decide(ex.head.headers, now)
            if decision.retry_kid is not None:
                again = (view, route_key, host)
                self.task_group.create_task(self._load_keys(ex, [decision.retry_kid], again))
                return
            if decision.status:
                reason = UNAUTHENTICATED if decision.status == 401 else FORBIDDEN
                ex.fail(decision.status, reason, decision.extra)
                return
            # The API key stays here; what the credential proved goes upstream.
            kept = [h for h in ex.head.headers if h[0] not in policy.api_headers]
            ex.head.headers = kept + decision.add
            claims = decision.claims
        limited = self._rate_limit(ex, route_key, claims)
        if limited is None:
            return
        self.outbound.route_to(ex, view, host)
        self._name_destination(ex)
        # After routing: the route's own ResponseHeaderModifier plans are set by then.
        edge_ops = (*limited, *cors_ops, self.hsts) if self.hsts else (*limited, *cors_ops)
        if edge_ops:
            ex.response_ops = (*ex.response_ops, *edge_ops)

    def _name_destination(self, ex: Exchange) -> None:
        """Telemetry and retry budgets belong to the backend service, not to the virtual
        host the route was found in (its key is the gateway's own)."""
        routed = ex.route
        snap = self.holder.current
        if not isinstance(routed, Routed) or snap is None:
            return
        target = snap.services.get(routed.backend.key)
        if target is not None and target is not routed.view:
            routed.view = target
            target.retry_budget.record_request(ex.client.loop.time())

    def _cors(self, ex: Exchange, cors: Cors) -> tuple[tuple[HeaderOps, ...], bool]:
        """(response headers to add, whether the request was answered here: a preflight)."""
        origin = ex.head.header(b"origin")
        if origin is None:
            return (), False
        allowed = cors.allowed(origin)
        if ex.head.method == b"OPTIONS" and ex.head.header(b"access-control-request-method"):
            if allowed:
                ex.fail(200, CORS_PREFLIGHT, cors.preflight_lines(origin))
            else:
                ex.fail(403, CORS_REFUSED)
            return (), True
        return ((cors.response_ops(origin),) if allowed else ()), False

    async def _load_keys(
        self,
        ex: Exchange,
        sources: list[KeySource],
        then: tuple[ServiceView, str, str],
    ) -> None:
        now = self.clock()
        for source in sources:
            await source.load(self.fetch, now)
        if ex.finished:
            return
        self._authenticate(ex, *then)

    def _rate_limit(
        self, ex: Exchange, route_key: str, claims: Any
    ) -> tuple[HeaderOps, ...] | None:
        """None when refused (answered 429); else the RateLimit-* response headers."""
        key = self.listener.rate_limit.get(route_key)
        limiters = self.state.policies.limits.get(key) if key is not None else None
        if not limiters:
            return ()
        now = time.monotonic()
        tightest = None
        for limiter in limiters:
            client = self._client_key(ex, limiter.spec, claims)
            verdict = limiter.take(f"{route_key}|{client}", now)
            if not verdict.allowed:
                ex.fail(429, RATE_LIMITED, headers_for(verdict))
                return None
            if tightest is None or verdict.remaining < tightest.remaining:
                tightest = verdict
        if tightest is None:
            return ()
        lines = headers_for(tightest).split(b"\r\n")
        pairs = tuple(
            (name, value) for name, _, value in (ln.partition(b": ") for ln in lines if ln)
        )
        return (HeaderOps(set=pairs),)

    def _client_key(self, ex: Exchange, spec: LimitSpec, claims: Any) -> str:
        if spec.key_type == "Header":
            return (ex.head.header(spec.key_name.encode()) or b"").decode("latin-1")
        if spec.key_type == "Claim":
            return str(claims.get(spec.key_name, "")) if isinstance(claims, dict) else ""
        if spec.key_type == "None":
            return ""
        peer = ex.client.peer_ip.decode()
        xff = ex.head.header(b"x-forwarded-for")
        return client_ip(peer, xff.decode("latin-1") if xff else None, spec.trusted_proxies)

    def _sanitize(
        self, headers: list[tuple[bytes, bytes]], peer_ip: bytes, policies: Policies
    ) -> list[tuple[bytes, bytes]]:
        """Drop what an outside client may not decide; keep X-Forwarded-For's trusted tail."""
        out = []
        xff: list[bytes] = []
        for name, value in headers:
            if name.startswith(_INTERNAL_PREFIX) or name in _FORWARDED:
                continue
            if name in policies.owned:
                continue
            if name == b"x-forwarded-for":
                xff.extend(h.strip() for h in value.split(b",") if h.strip())
                continue
            out.append((name, value))
        if self.trusted_proxies and xff:
            out.append((b"x-forwarded-for", b", ".join(xff[-self.trusted_proxies :])))
        return out

    def _redirect(self, ex: Exchange) -> None:
        authority, origin_form = split_target(ex.head.target)
        host = normalize_host(authority if authority is not None else ex.head.host)
        port = b"" if self.https_port in (None, 443) else b":%d" % self.https_port
        location = b"https://" + host.encode() + port + origin_form
        if b"\r" in location or b"\n" in location:
            ex.fail(400, errors.BAD_REQUEST)
            return
        ex.fail(308, errors.REDIRECT, b"location: " + location + b"\r\n")

    def retry(self, ex: Exchange, status: int, reason: str, proven_unsent: bool) -> bool:
        return self.outbound.retry(ex, status, reason, proven_unsent)

    def done(self, ex: Exchange, status: int, ok: bool) -> None:
        self.outbound.done(ex, status, ok)
