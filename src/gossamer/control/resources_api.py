"""REST CRUD per kind, list with labelSelector, and the store watch stream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gossamer.control.documents import (
    KINDS_WITH_REFS,
    missing_service_warnings,
    plan_write,
    to_api,
)
from gossamer.control.errors import ApiError, json_response, read_json_object
from gossamer.control.route_conflicts import write_conflicts
from gossamer.model import KINDS, KindInfo, ValidationFailed, parse_document
from gossamer.model.kinds import lookup_kind
from gossamer.model.parse import Resource
from gossamer.store.base import AlreadyExists, Compacted, Conflict, NotFound, Record, Store

# How long a watch waits for the store to refuse a compacted revision before committing to 200.
_COMPACTED_CHECK_SECONDS = 0.2


def kind_for_plural(plural: str) -> KindInfo:
    for info in KINDS.values():
        if info.plural == plural:
            return info
    known = ", ".join(sorted(i.plural for i in KINDS.values()))
    raise ApiError(404, f"unknown resource type {plural!r}; known: {known}")


def parse_selector(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    out: dict[str, str] = {}
    for part in raw.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ApiError(400, f"labelSelector must be k=v[,k2=v2], got {raw!r}")
        out[key.strip()] = value.strip()
    return out


def int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ApiError(400, f"query parameter {name} must be >= 0, got {value}")
    return value


# Returns a predicate "namespace/name" -> does the service exist (declared, or implied by an
# instance), current as of the store's latest revision. Answered from the in-memory MeshState:
# listing every instance on each write would cost O(mesh) per apply.
ServiceExists = Callable[[], Awaitable[Callable[[str], bool]]]


class ResourceApi:
    def __init__(
        self,
        store: Store,
        service_exists: ServiceExists,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.service_exists = service_exists
        self.wall_clock = wall_clock

    def routes(self) -> list[web.RouteDef]:
        one = "/api/v1/namespaces/{ns}/{plural}/{name}"
        return [
            web.get("/api/v1/watch", self.watch),
            web.get("/api/v1/{plural}", self.list_all),
            web.get("/api/v1/namespaces/{ns}/{plural}", self.list_namespace),
            web.post("/api/v1/namespaces/{ns}/{plural}", self.create),
            web.get(one, self.get),
            web.put(one, self.replace),
            web.delete(one, self.delete),
        ]

    async def _list(self, request: web.Request, namespace: str | None) -> web.Response:
        info = kind_for_plural(request.match_info["plural"])
        selector = parse_selector(request.query.get("labelSelector"))
        records, revision = await self.store.list(info.kind, namespace, selector)
        items = [to_api(r) for r in records]
        return json_response({"kind": "List", "items": items, "revision": revision})

    async def list_all(self, request: web.Request) -> web.Response:
        return await self._list(request, None)

    async def list_namespace(self, request: web.Request) -> web.Response:
        return await self._list(request, request.match_info["ns"])

    async def get(self, request: web.Request) -> web.Response:
        info = kind_for_plural(request.match_info["plural"])
        ns, name = request.match_info["ns"], request.match_info["name"]
        record = await self.store.get(info.kind, ns, name)
        if record is None:
            raise ApiError(404, f"{info.kind} {ns}/{name} not found")
        return json_response(to_api(record))

    async def _parse_body(self, request: web.Request, info: KindInfo) -> Resource:
        body = await read_json_object(request)
        body.setdefault("apiVersion", "gossamer.dev/v1")
        body.setdefault("kind", info.kind)
        ns = request.match_info["ns"]
        meta = body.get("metadata")
        if isinstance(meta, dict):
            meta.setdefault("namespace", ns)
        try:
            resource = parse_document(body)
        except ValidationFailed as exc:
            raise ApiError(422, f"{len(exc.errors)} error(s) in the document", exc.errors) from None
        if resource.kind != info.kind:
            raise ApiError(400, f"body kind {resource.kind} does not match {info.plural}")
        if resource.metadata.namespace != ns:
            raise ApiError(
                400, f"metadata.namespace {resource.metadata.namespace!r} does not match {ns!r}"
            )
        return resource

    async def _warnings(
        self, resource: Resource, existing: Record | None = None
    ) -> list[str] | None:
        if resource.kind not in KINDS_WITH_REFS:
            return None
        warnings = missing_service_warnings(resource, await self.service_exists()) or []
        if resource.kind == "HTTPRoute":  # an identical match of an older route wins
            stored = {resource.key: existing} if existing else {}
            conflicts = await write_conflicts(self.store, [resource], stored, self.wall_clock())
            warnings += conflicts.get(resource.key[1:], [])
        return warnings

    async def create(self, request: web.Request) -> web.Response:
        info = kind_for_plural(request.match_info["plural"])
        resource = await self._parse_body(request, info)
        warnings = await self._warnings(resource)
        planned = plan_write(resource, None, warnings, self.wall_clock())
        kind, ns, name = resource.key
        try:
            record = await self.store.create(kind, ns, name, planned.value)
        except AlreadyExists:
            raise ApiError(409, f"{kind} {ns}/{name} already exists") from None
        return json_response(to_api(record), status=201)

    async def replace(self, request: web.Request) -> web.Response:
        info = kind_for_plural(request.match_info["plural"])
        resource = await self._parse_body(request, info)
        kind, ns, name = resource.key
        if name != request.match_info["name"]:
            raise ApiError(400, f"metadata.name {name!r} does not match the path")
        existing = await self.store.get(kind, ns, name)
        if existing is None:
            raise ApiError(404, f"{kind} {ns}/{name} not found")
        expected = existing.mod_revision
        given = resource.metadata.resourceVersion
        if given is not None:
            if not given.isdigit() or int(given) != existing.mod_revision:
                raise ApiError(
                    409,
                    f"{kind} {ns}/{name} is at resourceVersion {existing.mod_revision}, "
                    f"not {given}: read it again and retry",
                )
        warnings = await self._warnings(resource, existing)
        planned = plan_write(resource, existing, warnings, self.wall_clock())
        if planned.action == "unchanged":
            return json_response(to_api(existing))
        try:
            record = await self.store.update(kind, ns, name, planned.value, expected)
        except NotFound:
            raise ApiError(404, f"{kind} {ns}/{name} not found") from None
        except Conflict:
            raise ApiError(409, f"{kind} {ns}/{name} changed meanwhile: retry") from None
        return json_response(to_api(record))

    async def delete(self, request: web.Request) -> web.Response:
        info = kind_for_plural(request.match_info["plural"])
        ns, name = request.match_info["ns"], request.match_info["name"]
        try:
            record = await self.store.delete(info.kind, ns, name)
        except NotFound:
            raise ApiError(404, f"{info.kind} {ns}/{name} not found") from None
        return json_response(to_api(record))

    async def watch(self, request: web.Request) -> web.StreamResponse:
        from_revision = int_param(request, "fromRevision", -1)
        kinds_raw = request.query.get("kinds")
        kinds: tuple[str, ...] | None = None
        if kinds_raw:
            try:
                kinds = tuple(lookup_kind(k.strip()).kind for k in kinds_raw.split(","))
            except KeyError as exc:
                raise ApiError(400, str(exc.args[0])) from None
        if from_revision < 0:
            from_revision = await self.store.revision()
        events = aiter(self.store.watch(from_revision, kinds))
        first: asyncio.Task[Any] = asyncio.ensure_future(anext(events))
        try:
            # A compacted revision must become a 410 before the 200 headers go out.
            await asyncio.wait({first}, timeout=_COMPACTED_CHECK_SECONDS)
            if first.done() and isinstance(first.exception(), Compacted):
                raise ApiError(410, f"revision {from_revision} is compacted; list and watch again")
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            event = await first
            while True:
                line = {
                    "type": event.type,
                    "revision": event.revision,
                    "object": to_api(event.record),
                }
                await response.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
                event = await anext(events)
        finally:
            if not first.done():
                first.cancel()
                await asyncio.wait({first})  # the generator must stop running before aclose
            closer = getattr(events, "aclose", None)
            if closer is not None:
                await closer()
