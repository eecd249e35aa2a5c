"""The Store contract, written once against the protocol in gossamer.store.base.

Every implementation joins by adding one entry to IMPLEMENTATIONS: a factory that opens a
store at a location (the same location opened again must give the same data). The tests
here and in conformance_watch.py and conformance_model.py are collected by
test_store_conformance.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gossamer.store import AlreadyExists, Conflict, Event, NotFound, Op, Store
from gossamer.store.sqlite import SQLiteStore

StoreFactory = Callable[[Path], Store]


def _open_sqlite(location: Path) -> Store:
    location.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(location / "store.db")


IMPLEMENTATIONS: dict[str, StoreFactory] = {"sqlite": _open_sqlite}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    return IMPLEMENTATIONS[request.param]


@pytest.fixture
async def store(store_factory: StoreFactory, tmp_path: Path) -> AsyncIterator[Store]:
    opened = store_factory(tmp_path / "store")
    yield opened
    await opened.close()


def doc(name: str, labels: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "gossamer.dev/v1", "kind": "Service", "metadata": metadata, "spec": spec}


async def take(store: Store, from_revision: int, count: int, **kw: Any) -> list[Event]:
    """The first `count` events of a watch (failing, not hanging, if they never come)."""
    out: list[Event] = []
    async with asyncio.timeout(10), contextlib.aclosing(store.watch(from_revision, **kw)) as it:
        async for event in it:
            out.append(event)
            if len(out) == count:
                break
    return out


def summary(events: list[Event]) -> list[tuple[str, int, str, str, str]]:
    return [(e.type, e.revision, e.record.kind, e.record.namespace, e.record.name) for e in events]


# ---- basic CRUD --------------------------------------------------------------------


async def test_empty_store(store: Store) -> None:
    assert await store.revision() == 0
    assert await store.get("Service", "default", "a") is None
    assert await store.list("Service") == ([], 0)


async def test_create_then_get_round_trips_value(store: Store) -> None:
    value = doc("a", {"app": "a"}, ports=[80, 443], weight=0.25, note="ünïcode ✓", empty={})
    created = await store.create("Service", "default", "a", value)
    assert (created.create_revision, created.mod_revision) == (1, 1)
    assert created.key == ("Service", "default", "a")
    got = await store.get("Service", "default", "a")
    assert got == created
    assert got is not None and got.value == value
    assert await store.revision() == 1


async def test_create_existing_raises_already_exists(store: Store) -> None:
    await store.create("Service", "default", "a", doc("a"))
    with pytest.raises(AlreadyExists):
        await store.create("Service", "default", "a", doc("a", replicas=2))
    assert await store.revision() == 1
    got = await store.get("Service", "default", "a")
    assert got is not None and got.value == doc("a")


async def test_same_name_in_other_kind_or_namespace_is_separate(store: Store) -> None:
    await store.create("Service", "default", "a", doc("a"))
    await store.create("Service", "prod", "a", doc("a", env="prod"))
    await store.create("HTTPRoute", "default", "a", doc("a", route=True))
    prod = await store.get("Service", "prod", "a")
    route = await store.get("HTTPRoute", "default", "a")
    assert prod is not None and prod.value["spec"] == {"env": "prod"}
    assert route is not None and route.value["spec"] == {"route": True}


async def test_update_bumps_mod_revision_keeps_create_revision(store: Store) -> None:
    created = await store.create("Service", "default", "a", doc("a"))
    await store.create("Service", "default", "b", doc("b"))
    updated = await store.update("Service", "default", "a", doc("a", replicas=3))
    assert (updated.create_revision, updated.mod_revision) == (created.create_revision, 3)
    assert await store.get("Service", "default", "a") == updated


async def test_update_missing_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.update("Service", "default", "ghost", doc("ghost"))
    with pytest.raises(NotFound):
        await store.update("Service", "default", "ghost", doc("ghost"), expected_revision=3)
    assert await store.get("Service", "default", "ghost") is None
    assert await store.revision() == 0


async def test_update_with_stale_revision_conflicts(store: Store) -> None:
    first = await store.create("Service", "default", "a", doc("a"))
    second = await store.update("Service", "default", "a", doc("a", v=2), first.mod_revision)
    with pytest.raises(Conflict):
        await store.update("Service", "default", "a", doc("a", v=3), first.mod_revision)
    assert await store.get("Service", "default", "a") == second
    third = await store.update("Service", "default", "a", doc("a", v=3), second.mod_revision)
    assert third.mod_revision == 3


async def test_delete_returns_record_at_delete_revision(store: Store) -> None:
    created = await store.create("Service", "default", "a", doc("a"))
    deleted = await store.delete("Service", "default", "a")
    assert deleted.value == doc("a")
    assert (deleted.create_revision, deleted.mod_revision) == (created.create_revision, 2)
    assert await store.get("Service", "default", "a") is None
    with pytest.raises(NotFound):
        await store.delete("Service", "default", "a")
    assert await store.revision() == 2


async def test_delete_with_stale_revision_conflicts(store: Store) -> None:
    created = await store.create("Service", "default", "a", doc("a"))
    await store.update("Service", "default", "a", doc("a", v=2))
    with pytest.raises(Conflict):
        await store.delete("Service", "default", "a", expected_revision=created.mod_revision)
    assert await store.get("Service", "default", "a") is not None
    await store.delete("Service", "default", "a", expected_revision=2)
    assert await store.get("Service", "default", "a") is None


async def test_recreate_after_delete_gets_new_create_revision(store: Store) -> None:
    await store.create("Service", "default", "a", doc("a"))
    await store.delete("Service", "default", "a")
    again = await store.create("Service", "default", "a", doc("a"))
    assert (again.create_revision, again.mod_revision) == (3, 3)


# ---- list, namespaces and label selectors -------------------------------------------


async def test_list_sorted_by_namespace_then_name_with_read_revision(store: Store) -> None:
    for namespace, name in [("prod", "b"), ("default", "z"), ("prod", "a"), ("default", "c")]:
        await store.create("Service", namespace, name, doc(name))
    await store.create("HTTPRoute", "default", "r", doc("r"))
    records, revision = await store.list("Service")
    assert [(r.namespace, r.name) for r in records] == [
        ("default", "c"),
        ("default", "z"),
        ("prod", "a"),
        ("prod", "b"),
    ]
    assert revision == 5
    prod, _ = await store.list("Service", namespace="prod")
    assert [r.name for r in prod] == ["a", "b"]
    assert (await store.list("Service", namespace="nowhere"))[0] == []
    routes, _ = await store.list("HTTPRoute")
    assert [r.name for r in routes] == ["r"]


async def test_label_selector_requires_every_pair(store: Store) -> None:
    await store.create("Service", "default", "v1", doc("v1", {"app": "r", "version": "v1"}))
    await store.create("Service", "default", "v2", doc("v2", {"app": "r", "version": "v2"}))
    await store.create("Service", "default", "other", doc("other", {"app": "o"}))
    await store.create("Service", "default", "bare", doc("bare"))
    await store.create("Service", "default", "odd", doc("odd", {"app": 7}))

    async def names(selector: dict[str, str] | None) -> list[str]:
        return [r.name for r in (await store.list("Service", selector=selector))[0]]

    assert await names({"app": "r"}) == ["v1", "v2"]
    assert await names({"app": "r", "version": "v2"}) == ["v2"]
    assert await names({"app": "r", "version": "v3"}) == []
    assert await names({"app": "7"}) == []
    assert await names({}) == ["bare", "odd", "other", "v1", "v2"]
    assert await names(None) == ["bare", "odd", "other", "v1", "v2"]


# ---- transactions --------------------------------------------------------------------


async def test_txn_applies_every_op_at_one_revision_in_op_order(store: Store) -> None:
    await store.create("Service", "default", "gone", doc("gone"))
    results = await store.txn(
        [
            Op("put", "Service", "default", "b", doc("b")),
            Op("delete", "Service", "default", "gone"),
            Op("put", "HTTPRoute", "default", "a", doc("a"), expected_revision=0),
        ]
    )
    assert [(r.kind, r.name, r.mod_revision) for r in results] == [
        ("Service", "b", 2),
        ("Service", "gone", 2),
        ("HTTPRoute", "a", 2),
    ]
    assert results[1].value == doc("gone")
    assert await store.revision() == 2
    assert await store.get("Service", "default", "gone") is None


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        (Op("put", "Service", "default", "exists", doc("x"), expected_revision=0), AlreadyExists),
        (Op("put", "Service", "default", "exists", doc("x"), expected_revision=99), Conflict),
        (Op("put", "Service", "default", "missing", doc("x"), expected_revision=5), NotFound),
        (Op("delete", "Service", "default", "missing"), NotFound),
        (Op("delete", "Service", "default", "exists", expected_revision=99), Conflict),
    ],
)
async def test_txn_failing_op_writes_nothing(
    store: Store, failing: Op, error: type[Exception]
) -> None:
    await store.create("Service", "default", "exists", doc("exists"))
    await store.create("Service", "default", "other", doc("other"))
    before = await store.list("Service")
    ops = [
        Op("put", "Service", "default", "new", doc("new")),
        Op("put", "Service", "default", "other", doc("other", changed=True)),
        failing,
        Op("put", "Service", "default", "late", doc("late")),
    ]
    with pytest.raises(error):
        await store.txn(ops)
    assert await store.list("Service") == before
    assert await store.revision() == 2
    # Nothing reached the history either: the next write is revision 3 and watch sees only it.
    await store.create("Service", "default", "after", doc("after"))
    assert summary(await take(store, 2, 1)) == [("PUT", 3, "Service", "default", "after")]


async def test_txn_put_expected_revision_semantics(store: Store) -> None:
    [created] = await store.txn([Op("put", "Service", "default", "a", doc("a"))])  # None: any
    [replaced] = await store.txn([Op("put", "Service", "default", "a", doc("a", v=2))])
    assert (replaced.create_revision, replaced.mod_revision) == (created.create_revision, 2)
    [checked] = await store.txn(
        [Op("put", "Service", "default", "a", doc("a", v=3), expected_revision=2)]
    )
    assert checked.mod_revision == 3


async def test_txn_naming_a_record_twice_is_rejected(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.txn(
            [
                Op("put", "Service", "default", "a", doc("a")),
                Op("delete", "Service", "default", "a"),
            ]
        )
    assert await store.revision() == 0


async def test_revisions_strictly_increase_and_failures_do_not_consume_them(store: Store) -> None:
    seen = [await store.revision()]
    for i in range(5):
        seen.append((await store.create("Service", "default", f"s{i}", doc(f"s{i}"))).mod_revision)
        with pytest.raises(AlreadyExists):
            await store.create("Service", "default", f"s{i}", doc(f"s{i}"))
    seen.append((await store.delete("Service", "default", "s0")).mod_revision)
    assert seen == list(range(7))
    assert await store.revision() == 6
