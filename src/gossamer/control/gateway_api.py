"""The gateway's config endpoint: a long poll for its compiled view, and replica tracking.

`GET /api/v1/proxies/{id}/gateway?namespace=default&name=edge&known=<hash>&wait=10`
answers at once when the view's hash differs from `known`, else when the store or the
set of live replicas changes, else after `wait` seconds (`{"hash", "unchanged": true}`).
Each poll marks replica `{id}` alive for REPLICA_TTL seconds; the view carries the
number of live replicas, so each one enforces its share of every rate limit.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gossamer.control.auth import principal_of
from gossamer.control.compiler import encode_message
from gossamer.control.errors import ApiError, json_response
from gossamer.control.fanout import Fanout
from gossamer.control.gateway_compiler import compile_gateway
from gossamer.model.common import check_dns_label
from gossamer.store.base import Store

GATEWAY_KINDS = ("Gateway", "HTTPRoute", "AuthPolicy", "RateLimitPolicy", "Secret")
REPLICA_TTL = 15.0  # a replica polls at least every MAX_WAIT seconds
MAX_WAIT = 10.0
RECHECK = 0.5  # how often a waiting poll looks at the replica set


class Replicas:
    """Live replicas per gateway: proxy id -> last poll (monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seen: dict[tuple[str, str], dict[str, float]] = {}

    def touch(self, gateway: tuple[str, str], proxy_id: str) -> None:
        self.seen.setdefault(gateway, {})[proxy_id] = self.clock()

    def count(self, gateway: tuple[str, str]) -> int:
        now = self.clock()
        live = self.seen.get(gateway, {})
        for pid in [p for p, at in live.items() if now - at > REPLICA_TTL]:
            del live[pid]
        return max(1, len(live))


class GatewayApi:
    def __init__(self, store: Store, fanout: Callable[[], Fanout]) -> None:
        self.store = store
        self.fanout = fanout
        self.replicas = Replicas()

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1/proxies/{id}/gateway", self.config)]

    async def _view(self, gateway: tuple[str, str]) -> tuple[str, dict[str, Any]]:
        docs = {kind: [r.value for r in (await self.store.list(kind))[0]] for kind in GATEWAY_KINDS}
        view = compile_gateway(docs, *gateway, replicas=self.replicas.count(gateway))
        if view is None:
            raise ApiError(404, f"Gateway {gateway[0]}/{gateway[1]} not found")
        return hashlib.sha256(encode_message(view)).hexdigest()[:32], view

    async def config(self, request: web.Request) -> web.Response:
        proxy_id = request.match_info["id"]
        query = request.query
        gateway = (query.get("namespace", "default"), query.get("name", ""))
        for field, value in zip(("namespace", "name"), gateway, strict=True):
            try:
                check_dns_label(value)
            except ValueError as exc:
                raise ApiError(400, f"{field} {value!r}: {exc}") from None
        principal = principal_of(request)
        if principal.role == "proxy" and (principal.namespace or "default", principal.name) != (
            gateway
        ):
            raise ApiError(403, f"this credential acts only for {principal.name}")
        try:
            wait = min(MAX_WAIT, max(0.0, float(query.get("wait", "0"))))
        except ValueError:
            raise ApiError(400, "wait must be a number of seconds") from None
        known = query.get("known", "")
        self.replicas.touch(gateway, proxy_id)
        deadline = time.monotonic() + wait
        computed_at: tuple[int, int] | None = None  # (revision, replicas) of `digest`
        digest = ""
        while True:
            fanout = self.fanout()
            inputs = (fanout.state.revision, self.replicas.count(gateway))
            if inputs != computed_at:  # recompile only when something it depends on moved
                digest, view = await self._view(gateway)
                computed_at = inputs
                if digest != known:
                    return json_response({"hash": digest, "view": view})
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return json_response({"hash": digest, "unchanged": True})
            self.replicas.touch(gateway, proxy_id)
            await fanout.wait_for_state(fanout.state.revision + 1, min(RECHECK, remaining))
