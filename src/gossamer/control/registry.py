"""The instance registry: proxies register instances under in-memory leases.

Heartbeats only touch memory. The store is written when the health the snapshots must show
changes (healthy <-> unhealthy), when an instance registers, and when it goes away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gossamer.control.documents import plan_write
from gossamer.control.leases import Expire, Health, InstanceKey, LeaseAction, LeaseTable, SetHealth
from gossamer.model import FieldError, ValidationFailed, parse_document
from gossamer.store.base import Conflict, NotFound, Op, Record, Store

log = logging.getLogger(__name__)
REGISTER_FIELDS = ("service", "address", "port", "appPort", "statsPort", "labels", "leaseSeconds")


class UnknownLease(KeyError):
    """No lease for this proxy id: it must register (again)."""


class Registry:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.clock = clock
        self.wall_clock = wall_clock
        self.leases = LeaseTable()
        self._by_proxy: dict[str, InstanceKey] = {}
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()

    async def restore(self) -> int:
        """Give every stored instance a fresh lease (after a control-plane restart)."""
        records, _ = await self.store.list("Instance")
        now = self.clock()
        for record in records:
            spec = record.value.get("spec") or {}
            health: Health = (
                "unhealthy"
                if (record.value.get("status") or {}).get("health") == "unhealthy"
                else "healthy"
            )
            lease_seconds = spec.get("leaseSeconds", 10.0)
            if not isinstance(lease_seconds, int | float) or lease_seconds <= 0:
                lease_seconds = 10.0
            key = (record.namespace, record.name)
            self.leases.grant(key, float(lease_seconds), now, health)
            self._by_proxy[record.name] = key
        self.poke()
        return len(records)

    def poke(self) -> None:
        """Re-check deadlines now (after a clock change, or a new lease)."""
        self._wake.set()

    async def register(self, proxy_id: str, body: dict[str, Any]) -> Record:
        """Create or replace the instance `proxy_id`, healthy, under a new lease.
        Raises ValidationFailed naming every bad field."""
        namespace = body.get("namespace", "default")
        spec = {k: body[k] for k in REGISTER_FIELDS if k in body}
        spec["proxy"] = proxy_id
        doc = {
            "apiVersion": "gossamer.dev/v1",
            "kind": "Instance",
            "metadata": {"name": proxy_id, "namespace": namespace},
            "spec": spec,
        }
        where = f"register {proxy_id}"
        errors = [
            FieldError(where, f, "unknown field; allowed: namespace, " + ", ".join(REGISTER_FIELDS))
            for f in sorted(set(body) - {*REGISTER_FIELDS, "namespace"})
        ]
        try:
            resource = parse_document(doc, where)
        except ValidationFailed as exc:
            raise ValidationFailed(errors + exc.errors) from None
        if errors:
            raise ValidationFailed(errors)
        key: InstanceKey = (resource.metadata.namespace, proxy_id)
        old_key = self._by_proxy.get(proxy_id)
        async with self._write_lock:
            if old_key is not None and old_key != key:
                await self._delete(old_key)  # re-registered into another namespace
            existing = await self.store.get("Instance", *key)
            planned = plan_write(resource, existing, None, self.wall_clock())
            value = {**planned.value, "status": {**planned.value["status"], "health": "healthy"}}
            [record] = await self.store.txn([Op("put", "Instance", *key, value=value)])
        self.leases.grant(key, resource.spec.leaseSeconds, self.clock())  # type: ignore[attr-defined]
        self._by_proxy[proxy_id] = key
        self.poke()
        return record

    async def heartbeat(self, proxy_id: str, healthy: bool) -> None:
        key = self._by_proxy.get(proxy_id)
        if key is None or key not in self.leases:
            raise UnknownLease(proxy_id)
        action = self.leases.renew(key, self.clock(), healthy)
        if action is not None:
            await self._apply(action)
        # No poke: a renewal only moves this lease's deadline later.

    async def deregister(self, proxy_id: str) -> bool:
        key = self._by_proxy.pop(proxy_id, None)
        if key is None:
            return False
        self.leases.release(key)
        async with self._write_lock:
            await self._delete(key)
        return True

    async def expire_due(self) -> int:
        """Apply every lease decision due at the clock's now; returns how many."""
        actions = self.leases.due(self.clock())
        for action in actions:
            await self._apply(action)
        return len(actions)

    async def run(self) -> None:
        """Enforce lease deadlines until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.expire_due()
            except Exception:
                log.exception("registry: applying lease decisions failed; retrying")
            deadline = self.leases.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock()) + 0.001
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _apply(self, action: LeaseAction) -> None:
        async with self._write_lock:
            if isinstance(action, Expire):
                self._by_proxy.pop(action.key[1], None)
                await self._delete(action.key)
            elif isinstance(action, SetHealth):
                await self._set_health(action.key, action.health)

    async def _set_health(self, key: InstanceKey, health: Health) -> None:
        for _ in range(3):  # a concurrent edit moves the revision: read again
            record = await self.store.get("Instance", *key)
            if record is None:
                self.leases.release(key)
                return
            status = {**(record.value.get("status") or {}), "health": health}
            try:
                await self.store.update(
                    "Instance", *key, {**record.value, "status": status}, record.mod_revision
                )
                return
            except Conflict:
                continue
            except NotFound:
                self.leases.release(key)
                return
        log.warning("registry: could not write health of %s/%s", *key)

    async def _delete(self, key: InstanceKey) -> None:
        try:
            await self.store.delete("Instance", *key)
        except NotFound:
            pass
