"""Instance leases, sans-IO: time comes in as `now`, decisions come out as actions.

A lease lives in memory only (a heartbeat is not a store write). Past `lease_seconds`
without renewal the instance turns unhealthy; past 3 x lease_seconds it is deleted. A
heartbeat carries the sidecar's own probe result, which can turn it unhealthy or back.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Literal

InstanceKey = tuple[str, str]  # (namespace, instance name)
Health = Literal["healthy", "unhealthy"]
DELETE_AFTER_LEASES = 3


@dataclass(slots=True)
class Lease:
    lease_seconds: float
    renewed_at: float
    reported_healthy: bool = True
    written: Health = "healthy"  # the health last written to the store
    scheduled: float = 0.0  # the one heap deadline that is current for this lease

    def wanted(self, now: float) -> Health:
        if not self.reported_healthy or now - self.renewed_at >= self.lease_seconds:
            return "unhealthy"
        return "healthy"


@dataclass(frozen=True, slots=True)
class SetHealth:
    key: InstanceKey
    health: Health


@dataclass(frozen=True, slots=True)
class Expire:
    key: InstanceKey


LeaseAction = SetHealth | Expire


@dataclass
class LeaseTable:
    leases: dict[InstanceKey, Lease] = field(default_factory=dict)
    # (deadline, key): a lazy heap; stale entries are skipped when popped.
    _deadlines: list[tuple[float, InstanceKey]] = field(default_factory=list)

    def grant(
        self, key: InstanceKey, lease_seconds: float, now: float, health: Health = "healthy"
    ) -> None:
        """A new lease (register, or control-plane start) for an instance stored as `health`."""
        self.leases[key] = Lease(lease_seconds, now, reported_healthy=True, written=health)
        self._schedule(key, now)

    def renew(self, key: InstanceKey, now: float, healthy: bool) -> LeaseAction | None:
        """A heartbeat. Raises KeyError if there is no lease (the caller answers 404)."""
        lease = self.leases[key]
        lease.renewed_at = now
        lease.reported_healthy = healthy
        self._schedule(key, now)
        return self._health_change(key, lease, now)

    def release(self, key: InstanceKey) -> bool:
        return self.leases.pop(key, None) is not None

    def __contains__(self, key: InstanceKey) -> bool:
        return key in self.leases

    def due(self, now: float) -> list[LeaseAction]:
        """Actions whose time has come. Expired leases are dropped from the table."""
        actions: list[LeaseAction] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, key = heapq.heappop(self._deadlines)
            lease = self.leases.get(key)
            if lease is None or lease.scheduled != deadline:
                continue  # released, or superseded by a renewal
            if now - lease.renewed_at >= DELETE_AFTER_LEASES * lease.lease_seconds:
                del self.leases[key]
                actions.append(Expire(key))
                continue
            change = self._health_change(key, lease, now)
            if change is not None:
                actions.append(change)
            self._schedule(key, now)
        return actions

    def next_deadline(self) -> float | None:
        while self._deadlines:
            deadline, key = self._deadlines[0]
            lease = self.leases.get(key)
            if lease is not None and lease.scheduled == deadline:
                break
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def _health_change(self, key: InstanceKey, lease: Lease, now: float) -> SetHealth | None:
        wanted = lease.wanted(now)
        if wanted == lease.written:
            return None
        lease.written = wanted
        return SetHealth(key, wanted)

    def _schedule(self, key: InstanceKey, now: float) -> None:
        lease = self.leases[key]
        unhealthy_at = lease.renewed_at + lease.lease_seconds
        expire_at = lease.renewed_at + DELETE_AFTER_LEASES * lease.lease_seconds
        deadline = unhealthy_at if now < unhealthy_at else expire_at
        lease.scheduled = deadline
        heapq.heappush(self._deadlines, (deadline, key))
