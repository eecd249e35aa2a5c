"""Server-side apply and multi-document delete: all-or-nothing across documents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gossamer.control.documents import (
    KINDS_WITH_REFS,
    Planned,
    missing_service_warnings,
    plan_write,
)
from gossamer.control.errors import ApiError, json_response, read_json_object
from gossamer.control.resources_api import ServiceExists
from gossamer.control.route_conflicts import write_conflicts
from gossamer.model import FieldError, ValidationFailed, lookup_kind, parse_documents
from gossamer.model.parse import Resource
from gossamer.store.base import AlreadyExists, Conflict, NotFound, Op, Record, Store

# Waits until the proxies touched by revision N have ACKed it: (revision, seconds) -> sync body.
SyncWaiter = Callable[[int, float], Awaitable[dict[str, Any]]]
MAX_WAIT_SECONDS = 600.0
APPLY_ATTEMPTS = 3
BULK_READ_THRESHOLD = 32  # documents of one kind and namespace: list them instead of get each


def _doc_name(raw: Any, index: int) -> str:
    if isinstance(raw, dict):
        meta = raw.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            return f"{raw.get('kind')} {meta.get('namespace', 'default')}/{meta['name']}"
    return f"document {index + 1}"


class ApplyApi:
    def __init__(
        self,
        store: Store,
        wait_for_sync: SyncWaiter,
        service_exists: ServiceExists,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.service_exists = service_exists
        self._write_lock = asyncio.Lock()
        self.wait_for_sync = wait_for_sync
        self.wall_clock = wall_clock

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v1/apply", self.apply), web.post("/api/v1/delete", self.delete)]

    async def apply(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        documents = body.get("documents")
        if not isinstance(documents, list):
            raise ApiError(400, 'body must be {"documents": [...]}')
        dry_run = body.get("dryRun", False)
        wait = body.get("waitSeconds")
        if not isinstance(dry_run, bool):
            raise ApiError(400, "dryRun must be true or false")
        if wait is not None and (
            isinstance(wait, bool)
            or not isinstance(wait, int | float)
            or not 0 <= wait <= MAX_WAIT_SECONDS
        ):
            raise ApiError(400, f"waitSeconds must be a number from 0 to {MAX_WAIT_SECONDS:g}")
        try:
            resources = parse_documents(
                [(raw, _doc_name(raw, i), None) for i, raw in enumerate(documents)]
            )
        except ValidationFailed as exc:
            raise ApiError(
                422, f"{len(exc.errors)} error(s) in {len(documents)} document(s)", exc.errors
            ) from None
        plans, warnings, ops, versions, revision = await self._write(resources, dry_run)
        results = []
        for res, plan in zip(resources, plans, strict=True):
            kind, ns, name = res.key
            version = versions.get(res.key, plan.expected_revision)
            results.append(
                {
                    "kind": kind,
                    "namespace": ns,
                    "name": name,
                    "action": plan.action,
                    "resourceVersion": str(version) if version else None,
                }
            )
        out: dict[str, Any] = {"results": results, "warnings": warnings, "revision": revision}
        if dry_run:
            out["dryRun"] = True
        elif wait is not None:
            # Nothing written touches no proxy: there is nothing to wait for.
            no_change = {"complete": True, "pending": []}
            out["sync"] = await self.wait_for_sync(revision, float(wait)) if ops else no_change
        return json_response(out)

    async def _write(
        self, resources: list[Resource], dry_run: bool
    ) -> tuple[list[Planned], list[str], list[Op], dict[tuple[str, str, str], int], int]:
        """Plan against the stored state and write it in one transaction. A concurrent
        writer moving a resource between the plan and the write means plan again."""
        async with self._write_lock:  # applies do not race each other; others may
            return await self._plan_and_write(resources, dry_run)

    async def _plan_and_write(
        self, resources: list[Resource], dry_run: bool
    ) -> tuple[list[Planned], list[str], list[Op], dict[tuple[str, str, str], int], int]:
        for _attempt in range(APPLY_ATTEMPTS):
            plans, warnings = await self._plan(resources)
            ops = [
                Op("put", *res.key, value=plan.value, expected_revision=plan.expected_revision)
                for res, plan in zip(resources, plans, strict=True)
                if plan.action != "unchanged"
            ]
            if not ops or dry_run:
                return plans, warnings, ops, {}, await self.store.revision()
            try:
                records = await self.store.txn(ops)
            except (Conflict, AlreadyExists, NotFound):
                continue
            versions = {r.key: r.mod_revision for r in records}
            return plans, warnings, ops, versions, max(versions.values())
        raise ApiError(409, "resources kept changing while applying; nothing was applied, retry")

    async def _plan(self, resources: list[Resource]) -> tuple[list[Planned], list[str]]:
        # Services declared or given instances in this same apply count as existing.
        known: set[str] = set()
        needs_refs = any(res.kind in KINDS_WITH_REFS for res in resources)
        exists = await self.service_exists() if needs_refs else known.__contains__
        for res in resources:
            if res.kind == "Service":
                known.add(f"{res.metadata.namespace}/{res.metadata.name}")
            elif res.kind == "Instance":
                known.add(f"{res.metadata.namespace}/{getattr(res.spec, 'service', '')}")
        now = self.wall_clock()
        stored = await self._existing([res.key for res in resources])
        plans: list[Planned] = []
        all_warnings: list[str] = []
        conflicts = await write_conflicts(self.store, resources, stored, now)
        for res in resources:
            kind, ns, name = res.key
            warnings = missing_service_warnings(res, lambda key: key in known or exists(key))
            if conflicts.get((ns, name)) and kind == "HTTPRoute":
                warnings = [*(warnings or ()), *conflicts[(ns, name)]]
            all_warnings.extend(f"{kind} {ns}/{name}: {w}" for w in warnings or ())
            plans.append(plan_write(res, stored.get(res.key), warnings, now))
        return plans, all_warnings

    async def _existing(
        self, keys: list[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], Record]:
        """The stored records for `keys`: one get each for small applies, one listing per
        (kind, namespace) for bulk ones (a thousand reads become a few)."""
        groups: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
        for key in keys:
            groups.setdefault(key[:2], set()).add(key)
        found: dict[tuple[str, str, str], Record] = {}
        for (kind, ns), wanted in groups.items():
            if len(wanted) >= BULK_READ_THRESHOLD:
                records, _ = await self.store.list(kind, ns)
                found.update((r.key, r) for r in records if r.key in wanted)
                continue
            for key in wanted:
                record = await self.store.get(*key)
                if record is not None:
                    found[key] = record
        return found

    async def delete(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        documents = body.get("documents")
        if not isinstance(documents, list):
            raise ApiError(400, 'body must be {"documents": [...]}')
        keys, errors = _delete_keys(documents)
        if errors:
            raise ApiError(422, f"{len(errors)} error(s) in the delete request", errors)
        missing = []
        for i, (kind, ns, name) in enumerate(keys):
            if await self.store.get(kind, ns, name) is None:
                missing.append(FieldError(f"{kind} {ns}/{name}", f"documents[{i}]", "not found"))
        if missing:
            names = ", ".join(e.document for e in missing)
            raise ApiError(404, f"not found: {names}; nothing was deleted", missing)
        try:
            records = await self.store.txn([Op("delete", *key) for key in keys])
        except NotFound:
            raise ApiError(404, "a resource was deleted meanwhile; nothing was deleted") from None
        results = [
            {"kind": r.kind, "namespace": r.namespace, "name": r.name, "action": "deleted"}
            for r in records
        ]
        revision = max((r.mod_revision for r in records), default=await self.store.revision())
        return json_response({"results": results, "revision": revision})


def _delete_keys(documents: list[Any]) -> tuple[list[tuple[str, str, str]], list[FieldError]]:
    keys: list[tuple[str, str, str]] = []
    errors: list[FieldError] = []
    seen: set[tuple[str, str, str]] = set()
    for i, doc in enumerate(documents):
        where = f"document {i + 1}"
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if not isinstance(kind, str):
            errors.append(FieldError(where, "kind", "a kind is required", kind))
            continue
        try:
            info = lookup_kind(kind)
        except KeyError as exc:
            errors.append(FieldError(where, "kind", str(exc.args[0]), kind))
            continue
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            errors.append(FieldError(where, "metadata.name", "a name is required"))
            continue
        ns = meta.get("namespace", "default")
        if not isinstance(ns, str):
            errors.append(FieldError(where, "metadata.namespace", "must be a string", ns))
            continue
        key = (info.kind, ns, meta["name"])
        if key not in seen:
            seen.add(key)
            keys.append(key)
    return keys, errors
