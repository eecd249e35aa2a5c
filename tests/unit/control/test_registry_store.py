"""Registry decisions applied to a real SQLite store, in virtual time (no HTTP, no sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gossamer.control.registry import Registry, UnknownLease
from gossamer.model import ValidationFailed
from gossamer.store.sqlite import SQLiteStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "g.db")
    yield store
    await store.close()


def body(**extra: object) -> dict[str, object]:
    return {"service": "reviews", "address": "10.0.0.1", "port": 15006, "leaseSeconds": 5, **extra}


async def health(store: SQLiteStore, namespace: str, name: str) -> str | None:
    record = await store.get("Instance", namespace, name)
    return None if record is None else record.value["status"].get("health")


async def test_lease_lifecycle_writes_only_on_health_changes(store: SQLiteStore) -> None:
    clock = Clock()
    registry = Registry(store, clock, wall_clock=lambda: 1e9)
    await registry.register("reviews-1", body())
    assert await health(store, "default", "reviews-1") == "healthy"
    start = await store.revision()
    for _ in range(10):
        clock.now += 1.6
        await registry.heartbeat("reviews-1", healthy=True)
        await registry.expire_due()
    assert await store.revision() == start  # heartbeats are not store writes
    clock.now += 5
    assert await registry.expire_due() == 1
    assert await health(store, "default", "reviews-1") == "unhealthy"
    clock.now += 10
    assert await registry.expire_due() == 1
    assert await store.get("Instance", "default", "reviews-1") is None
    with pytest.raises(UnknownLease):
        await registry.heartbeat("reviews-1", healthy=True)


async def test_reregistering_in_another_namespace_moves_the_instance(store: SQLiteStore) -> None:
    registry = Registry(store, Clock())
    await registry.register("reviews-1", body())
    await registry.register("reviews-1", body(namespace="shop"))
    assert await store.get("Instance", "default", "reviews-1") is None
    assert await health(store, "shop", "reviews-1") == "healthy"
    assert await registry.deregister("reviews-1")
    assert await store.get("Instance", "shop", "reviews-1") is None
    assert not await registry.deregister("reviews-1")


async def test_instance_deleted_behind_the_registry_releases_its_lease(store: SQLiteStore) -> None:
    clock = Clock()
    registry = Registry(store, clock)
    await registry.register("reviews-1", body())
    await store.delete("Instance", "default", "reviews-1")
    clock.now += 5
    await registry.expire_due()  # wants to mark it unhealthy: finds nothing, lets go
    with pytest.raises(UnknownLease):
        await registry.heartbeat("reviews-1", healthy=True)


async def test_restore_leases_every_stored_instance(store: SQLiteStore) -> None:
    clock = Clock()
    first = Registry(store, clock)
    await first.register("reviews-1", body())
    await first.register("ratings-1", body(service="ratings", leaseSeconds=50))
    clock.now += 1000
    second = Registry(store, clock)
    assert await second.restore() == 2
    assert await second.expire_due() == 0
    clock.now += 5
    assert await second.expire_due() == 1  # reviews' 5 s lease, ratings has 50
    assert await health(store, "default", "reviews-1") == "unhealthy"
    assert await health(store, "default", "ratings-1") == "healthy"


async def test_invalid_registration_names_every_field(store: SQLiteStore) -> None:
    registry = Registry(store, Clock())
    with pytest.raises(ValidationFailed) as info:
        await registry.register("reviews-1", {"service": "Bad Name", "port": 70000, "extra": 1})
    fields = {e.field for e in info.value.errors}
    assert fields == {"extra", "spec.service", "spec.address", "spec.port"}
    assert await store.revision() == 0
