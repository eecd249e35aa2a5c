"""Where an outbound request goes: resolve the host, route, pick an endpoint, retry.

The decisions are the pure modules' (routing, balance, resilience); this class applies
them to one exchange at a time and keeps per-request state in the exchange's slots.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from gossamer.proxy.balance import hash_key_from_headers
from gossamer.proxy.http import errors
from gossamer.proxy.http.exchange import Exchange
from gossamer.proxy.outbound.filtering import apply_filters
from gossamer.proxy.outbound.mirror import MirrorSender
from gossamer.proxy.pool import UpstreamPool
from gossamer.proxy.resilience import backoff, is_retriable
from gossamer.proxy.routing import choose_backend, match_route
from gossamer.proxy.state import SnapshotHolder
from gossamer.proxy.telemetry.stats import Stats

if TYPE_CHECKING:
    from gossamer.proxy.snapshot import Backend, Endpoint, ServiceView

DISCOVERY_TIMEOUT = 5.0
DEFAULT_ATTEMPTS = 2  # without a route retry policy: one retry of failures without a response
NO_STATUS_CODES: frozenset[int] = frozenset()
BACKOFF_CAP_FACTOR = 10.0
EGRESS_CONNECT_TIMEOUT = 5.0  # DESIGN.md defaults; no TrafficPolicy applies outside the mesh
EGRESS_REQUEST_TIMEOUT = 15.0


class Routed:
    """Per-request routing state (one small object, only for mesh requests)."""

    __slots__ = ("backend", "failed", "last", "route", "view")

    def __init__(self, view: ServiceView, route: Any, backend: Backend) -> None:
        self.view = view
        self.route = route
        self.backend = backend
        self.failed: tuple[Endpoint, ...] = ()  # endpoints that failed this request
        self.last: Endpoint | None = None  # the latest attempt's endpoint (for telemetry)


def split_target(target: bytes) -> tuple[bytes | None, bytes]:
    """(authority or None, origin-form path) of a request target."""
    if target.startswith(b"http://"):
        slash = target.find(b"/", 7)
        if slash < 0:
            return target[7:], b"/"
        return target[7:slash], target[slash:]
    return None, target


def host_and_port(authority: bytes, default_port: int = 80) -> tuple[str, int]:
    host = authority.decode("latin-1").strip().lower()
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and not name.endswith("]"):
        return name, int(port)
    if sep and port.isdigit():
        return name, int(port)
    return host, default_port


class OutboundTarget:
    def __init__(
        self,
        holder: SnapshotHolder,
        stats: Stats,
        task_group: asyncio.TaskGroup,
        service_key: str | None = None,
        rand: Any = random.random,
        egress_pool: UpstreamPool | None = None,
        discovery_timeout: float = DISCOVERY_TIMEOUT,
    ) -> None:
        self.holder = holder
        self.stats = stats
        self.task_group = task_group
        self.service_key = service_key  # fixed for `--upstream` listeners
        self.rand = rand
        self.egress_pool = egress_pool  # plain connections to hosts outside the mesh
        self.discovery_timeout = discovery_timeout
        self.loop = asyncio.get_running_loop()
        self.mirrors = MirrorSender(rand, self.loop, stats)

    # Target ------------------------------------------------------------------------------

    def begin(self, ex: Exchange) -> None:
        authority, path = split_target(ex.head.target)
        if authority is not None:
            ex.upstream_target = path
        else:
            authority = ex.head.host
        snap = self.holder.current
        if snap is None:
            ex.fail(503, errors.NO_HEALTHY_ENDPOINT)
            return
        host = authority.decode("latin-1")
        if self.service_key is not None:
            view = snap.services.get(self.service_key)
            key: str | None = self.service_key
        else:
            view = snap.lookup(host)
            key = None if view is not None else snap.key_for_host(host)
        if view is not None:
            self._route(ex, view, host)
        elif key is None:
            self._egress(ex, authority, snap.outbound_policy)
        else:
            self.task_group.create_task(self._discover(ex, key, host))

    def route_to(self, ex: Exchange, view: ServiceView, host: str) -> None:
        """Route an exchange through a view the caller chose (the gateway's virtual hosts)."""
        self._route(ex, view, host)

    async def _discover(self, ex: Exchange, key: str, host: str) -> None:
        lookup = None if self.service_key is not None else host
        view = await self.holder.discover(key, self.discovery_timeout, lookup)
        if ex.finished:
            return
        if view is None:
            ex.fail(503, errors.NO_HEALTHY_ENDPOINT)
            return
        self._route(ex, view, host)

    def _egress(self, ex: Exchange, authority: bytes, policy: str) -> None:
        if policy != "ALLOW_ANY":
            ex.fail(403, errors.EGRESS_REFUSED)
            return
        if self.egress_pool is not None:
            ex.pool = self.egress_pool
        ex.set_deadline(EGRESS_REQUEST_TIMEOUT)
        ex.send(host_and_port(authority), EGRESS_CONNECT_TIMEOUT)

    def _route(self, ex: Exchange, view: ServiceView, host: str) -> None:
        if not view.exists:
            snap = self.holder.current
            name = host.split(":")[0].lower().rstrip(".")
            explicit_mesh_name = name.endswith(".svc") or name.endswith(".svc.cluster.local")
            if (
                self.service_key is None
                and snap is not None
                and snap.outbound_policy == "ALLOW_ANY"
                and not explicit_mesh_name
            ):
                # Istio's ALLOW_ANY: a name the mesh does not know (example.com, or a
                # name.namespace nobody registered) passes through to the host itself;
                # only the explicit mesh forms (*.svc) are answered with unknown_service.
                self._egress(ex, host.encode("latin-1"), snap.outbound_policy)
            else:
                ex.fail(404, errors.UNKNOWN_SERVICE)
            return
        head = ex.head
        route = None
        backend: Backend | None
        delay, abort = 0.0, 0
        if view.routes:
            path, _, query = ex.upstream_target.partition(b"?")
            route = match_route(view, head.method, path, query or None, head.headers)
            if route is None:
                ex.fail(404, errors.NO_ROUTE)
                return
            plan = route.plan
            if plan is None:
                ref = choose_backend(route, self.rand())
            else:
                ref, delay, abort = apply_filters(ex, route, plan, self.rand)
                if ex.finished:
                    return  # answered by a redirect
                if abort and not delay:
                    ex.fail(abort, errors.FAULT_INJECTED)
                    return
            backend = ref.backend if ref is not None else None
        else:
            backend = view.default_backend
        if backend is None:
            # A chosen ref without a backend names nothing valid (Gateway API: 500).
            if route is not None and ref is not None:
                ex.fail(500, errors.INVALID_BACKEND)
            else:
                ex.fail(503, errors.NO_HEALTHY_ENDPOINT)
            return
        if not backend.limits.try_acquire_request():
            ex.fail(503, errors.OVERFLOW)
            return
        ex.route = Routed(view, route, backend)
        now = self.loop.time()
        view.retry_budget.record_request(now)
        policy = backend.policy
        timeout = route.request_timeout if route is not None else None
        ex.set_deadline(timeout or policy.request_timeout)
        ex.idle_timeout = policy.idle_timeout
        if delay:
            # An injected delay counts against the route timeout, as a slow upstream would.
            self.loop.call_later(delay, self._after_fault_delay, ex, backend, abort)
            return
        self._attempt(ex, backend, now)

    def _after_fault_delay(self, ex: Exchange, backend: Backend, abort: int) -> None:
        if ex.finished:
            return
        if abort:
            ex.fail(abort, errors.FAULT_INJECTED)
        else:
            self._attempt(ex, backend, self.loop.time())

    def _attempt(self, ex: Exchange, backend: Backend, now: float) -> bool:
        hash_key = self._hash_key(ex, backend)
        endpoint = backend.balancer.pick(now, hash_key)
        routed: Routed = ex.route
        failed = routed.failed
        if failed and endpoint in failed:
            # A retry goes elsewhere when it can (Envoy's previous_hosts predicate): a dead
            # endpoint that fails fast can still look cheapest to the balancer.
            others = [
                ep
                for ep in backend.endpoints
                if ep not in failed and ep.outlier.ejected_until <= now
            ]
            if others:
                endpoint = others[int(self.rand() * len(others))]
        if endpoint is None:
            ex.endpoint = None
            ex.fail(503, errors.NO_HEALTHY_ENDPOINT)
            return False
        ex.endpoint = routed.last = endpoint
        backend.balancer.start(endpoint, now)
        self.stats.upstream_attempts += 1
        route = routed.route
        if route is not None and route.backend_request_timeout:
            ex.set_attempt_deadline(route.backend_request_timeout)
        ex.send((endpoint.address, endpoint.port), backend.policy.connect_timeout, backend.limits)
        return True

    def _hash_key(self, ex: Exchange, backend: Backend) -> bytes | None:
        lb = backend.policy.lb
        if lb.hash_header is None and lb.hash_cookie is None:
            return None
        return hash_key_from_headers(lb, ex.head.headers)

    def retry(self, ex: Exchange, status: int, reason: str, proven_unsent: bool) -> bool:
        routed: Routed | None = ex.route
        if routed is None:
            return False  # passthrough: no mesh policy
        now = self.loop.time()
        backend = routed.backend
        if ex.endpoint is not None:
            routed.failed += (ex.endpoint,)
        self._record(ex, backend, now, ok=False)
        policy = routed.route.retry if routed.route is not None else None
        attempts = policy.attempts if policy is not None else DEFAULT_ATTEMPTS
        codes = policy.codes if policy is not None else NO_STATUS_CODES
        base = policy.backoff if policy is not None else 0.025
        if ex.attempt >= attempts:
            return False
        upstream_status = None if reason else status
        body_size = ex.body_size if ex.replayable and ex.request_done else None
        if not is_retriable(ex.head.method, upstream_status, proven_unsent, body_size, codes):
            return False
        if not routed.view.retry_budget.try_withdraw(now):
            return False
        self.stats.retries += 1
        delay = backoff(ex.attempt, base, base * BACKOFF_CAP_FACTOR, self.rand())
        if delay <= 0:
            return self._attempt(ex, backend, now)
        self.loop.call_later(delay, self._retry_now, ex, backend)
        return True

    def _retry_now(self, ex: Exchange, backend: Backend) -> None:
        if not ex.finished:
            self._attempt(ex, backend, self.loop.time())

    def done(self, ex: Exchange, status: int, ok: bool) -> None:
        routed: Routed | None = ex.route
        if routed is None:
            return
        backend = routed.backend
        self._record(ex, backend, self.loop.time(), ok=ok and status < 500)
        backend.limits.release_request()
        route = routed.route
        if route is not None and route.mirrors:
            self.mirrors.send(ex, route.mirrors)

    def _record(self, ex: Exchange, backend: Backend, now: float, ok: bool) -> None:
        endpoint: Endpoint | None = ex.endpoint
        if endpoint is None:
            return
        ex.endpoint = None
        backend.balancer.finish(endpoint, now, now - ex.started_at, ok)
        if backend.outlier.record(endpoint, now, ok):
            self.stats.ejections += 1
