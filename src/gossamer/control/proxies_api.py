"""The proxy endpoints: register, heartbeat, deregister, snapshot stream, ack, watch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gossamer.control.compiler import PROTOCOL_VERSION
from gossamer.control.documents import to_api
from gossamer.control.errors import ApiError, json_response, read_json_object
from gossamer.control.fanout import Fanout
from gossamer.control.registry import Registry, UnknownLease
from gossamer.control.state import split_key
from gossamer.control.subscriber import Subscriber
from gossamer.model import ValidationFailed
from gossamer.model.common import check_dns_label

SUPPORTED_PROTOCOLS = (PROTOCOL_VERSION,)
MAX_WATCH_KEYS = 10_000
OK_BODY = b'{"ok":true}'  # ACKs and heartbeats, thousands a second: encoded once


def _ok() -> web.Response:
    return web.Response(body=OK_BODY, content_type="application/json")


def _proxy_id(request: web.Request) -> str:
    proxy_id = request.match_info["id"]
    try:
        return check_dns_label(proxy_id)
    except ValueError as exc:
        raise ApiError(400, f"proxy id {proxy_id!r}: {exc}") from None


def _service_keys(values: Any, what: str) -> list[str]:
    if not isinstance(values, list) or len(values) > MAX_WATCH_KEYS:
        raise ApiError(400, f"{what} must be a list of at most {MAX_WATCH_KEYS} 'namespace/name'")
    keys = []
    for value in values:
        try:
            if not isinstance(value, str):
                raise ValueError(f"service key must be a string, got {value!r}")
            namespace, name = split_key(value)
            check_dns_label(namespace)
            check_dns_label(name)
        except ValueError as exc:
            raise ApiError(400, f"{what}: {exc}") from None
        keys.append(value)
    return keys


class ProxyApi:
    def __init__(
        self,
        registry: Registry,
        fanout: Fanout,
        heartbeat_seconds: float = 15.0,
        coalesce_seconds: float = 0.05,
        on_heartbeat: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.on_heartbeat = on_heartbeat  # e.g. the bundle a proxy reports using
        self.registry = registry
        self.fanout = fanout
        self.heartbeat_seconds = heartbeat_seconds
        self.coalesce_seconds = coalesce_seconds

    def routes(self) -> list[web.RouteDef]:
        base = "/api/v1/proxies/{id}"
        return [
            web.get("/api/v1/proxies", self.list_proxies),
            web.post(base + "/register", self.register),
            web.post(base + "/heartbeat", self.heartbeat),
            web.delete(base, self.deregister),
            web.get(base + "/stream", self.stream),
            web.post(base + "/ack", self.ack),
            web.post(base + "/watch", self.watch),
        ]

    async def list_proxies(self, request: web.Request) -> web.Response:
        return json_response(self.fanout.listing())

    async def register(self, request: web.Request) -> web.Response:
        proxy_id = _proxy_id(request)
        body = await read_json_object(request)
        try:
            record = await self.registry.register(proxy_id, body)
        except ValidationFailed as exc:
            raise ApiError(
                422, f"{len(exc.errors)} error(s) in the registration", exc.errors
            ) from None
        return json_response(to_api(record))

    async def heartbeat(self, request: web.Request) -> web.Response:
        proxy_id = _proxy_id(request)
        body = await read_json_object(request)
        healthy = body.get("healthy", True)
        if not isinstance(healthy, bool):
            raise ApiError(400, "healthy must be true or false")
        try:
            await self.registry.heartbeat(proxy_id, healthy)
        except UnknownLease:
            raise ApiError(404, f"no lease for proxy {proxy_id}: register again") from None
        if self.on_heartbeat is not None:
            self.on_heartbeat(proxy_id, body)
        return _ok()

    async def deregister(self, request: web.Request) -> web.Response:
        proxy_id = _proxy_id(request)
        if not await self.registry.deregister(proxy_id):
            raise ApiError(404, f"proxy {proxy_id} is not registered")
        return json_response({"ok": True})

    async def ack(self, request: web.Request) -> web.Response:
        proxy_id = _proxy_id(request)
        body = await read_json_object(request)
        version = body.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ApiError(400, "version must be a non-negative integer")
        if not self.fanout.ack(proxy_id, version):
            raise ApiError(404, f"proxy {proxy_id} has no stream")
        return _ok()

    async def watch(self, request: web.Request) -> web.Response:
        proxy_id = _proxy_id(request)
        body = await read_json_object(request)
        keys = _service_keys(body.get("services"), "services")
        try:
            version = self.fanout.add_watch(proxy_id, keys)
        except KeyError:
            raise ApiError(404, f"proxy {proxy_id} has no open stream") from None
        return json_response({"version": version})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        proxy_id = _proxy_id(request)
        query = request.query
        protocol = query.get("protocol", "")
        if not protocol.isdigit() or int(protocol) not in SUPPORTED_PROTOCOLS:
            served = ", ".join(str(p) for p in SUPPORTED_PROTOCOLS)
            raise ApiError(
                400,
                f"protocol {protocol!r} is not served; this control plane speaks {served}",
                reason="UnsupportedProtocol",
            )
        namespace = query.get("namespace", "default")
        service = query.get("service", "")
        for name, value in (("namespace", namespace), ("service", service)):
            if value:
                try:
                    check_dns_label(value)
                except ValueError as exc:
                    raise ApiError(400, f"{name} {value!r}: {exc}") from None
        watch = [k for k in query.get("watch", "").split(",") if k]
        roots = _service_keys(watch, "watch")
        if service:
            roots += _service_keys([f"{namespace}/{service}"], "service")
        sub, first = self.fanout.subscribe(proxy_id, service, namespace, roots)
        try:
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            await response.write(first)
            await self._pump(response, sub)
        finally:
            self.fanout.unsubscribe(sub)
        return response

    async def _pump(self, response: web.StreamResponse, sub: Subscriber) -> None:
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        while sub.connected:
            try:
                # asyncio.timeout, not wait_for: no extra task per wake-up (1,000s of streams).
                async with asyncio.timeout(self.heartbeat_seconds):
                    await sub.wake.wait()
            except TimeoutError:
                await response.write(self.fanout.heartbeat_line(sub))
                continue
            # Coalesce: at most one delta per coalesce window, carrying everything pending.
            gap = last_sent + self.coalesce_seconds - loop.time()
            if gap > 0:
                await asyncio.sleep(gap)
            if not sub.connected:
                break
            line = self.fanout.next_line(sub)
            if line is not None:
                await response.write(line)
                last_sent = loop.time()
