"""The Store contract, written once against the protocol in gossamer.store.base.

Every implementation joins by adding one entry to IMPLEMENTATIONS: a factory that opens a
store at a location (the same location opened again must give the same data). The tests
here are collected by test_store_conformance.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossamer.store import (
    AlreadyExists,
    Compacted,
    Conflict,
    Event,
    NotFound,
    Op,
    Record,
    Store,
)
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


# ---- watch -----------------------------------------------------------------------------


async def write_history(store: Store) -> None:
    """Revisions 1..5: three creates, a two-op txn, a delete."""
    await store.create("Service", "default", "a", doc("a"))
    await store.create("HTTPRoute", "default", "r", doc("r"))
    await store.create("Service", "prod", "b", doc("b"))
    await store.txn(
        [
            Op("put", "Service", "default", "a", doc("a", v=2)),
            Op("put", "HTTPRoute", "default", "r", doc("r", v=2)),
        ]
    )
    await store.delete("Service", "prod", "b")


HISTORY = [
    ("PUT", 1, "Service", "default", "a"),
    ("PUT", 2, "HTTPRoute", "default", "r"),
    ("PUT", 3, "Service", "prod", "b"),
    ("PUT", 4, "Service", "default", "a"),
    ("PUT", 4, "HTTPRoute", "default", "r"),
    ("DELETE", 5, "Service", "prod", "b"),
]


async def test_watch_replays_history_in_order(store: Store) -> None:
    await write_history(store)
    events = await take(store, 0, len(HISTORY))
    assert summary(events) == HISTORY
    assert events[3].record.value == doc("a", v=2)
    assert (events[3].record.create_revision, events[3].record.mod_revision) == (1, 4)
    deleted = events[5].record
    assert deleted.value == doc("b") and (deleted.create_revision, deleted.mod_revision) == (3, 5)


async def test_watch_resumes_after_the_given_revision(store: Store) -> None:
    await write_history(store)
    assert summary(await take(store, 3, 3)) == HISTORY[3:]
    assert summary(await take(store, 4, 1)) == HISTORY[5:]


async def test_watch_delivers_live_events_after_history(store: Store) -> None:
    await store.create("Service", "default", "old", doc("old"))
    received: list[Event] = []
    caught_up = asyncio.Event()

    async def watcher() -> None:
        async with contextlib.aclosing(store.watch(0)) as it:
            async for event in it:
                received.append(event)
                caught_up.set()
                if len(received) == 3:
                    return

    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        tasks.create_task(watcher())
        await caught_up.wait()  # the watcher has replayed history and is now live
        await store.create("Service", "default", "new", doc("new"))
        await store.delete("Service", "default", "old")
    assert summary(received) == [
        ("PUT", 1, "Service", "default", "old"),
        ("PUT", 2, "Service", "default", "new"),
        ("DELETE", 3, "Service", "default", "old"),
    ]


async def test_watch_from_the_future_waits_for_that_revision(store: Store) -> None:
    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        pending = tasks.create_task(take(store, 2, 1))
        for name in "abc":
            await store.create("Service", "default", name, doc(name))
    assert summary(pending.result()) == [("PUT", 3, "Service", "default", "c")]


async def test_watch_filters_kinds(store: Store) -> None:
    await write_history(store)
    routes = await take(store, 0, 2, kinds=("HTTPRoute",))
    assert summary(routes) == [HISTORY[1], HISTORY[4]]
    both = await take(store, 0, 6, kinds=("HTTPRoute", "Service"))
    assert summary(both) == HISTORY
    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        live = tasks.create_task(take(store, 5, 1, kinds=("HTTPRoute",)))
        await store.create("Service", "default", "skipped", doc("skipped"))
        await store.create("HTTPRoute", "default", "seen", doc("seen"))
    assert summary(live.result()) == [("PUT", 7, "HTTPRoute", "default", "seen")]


async def compact(store: Store, revision: int) -> None:
    # compact() is not (yet) part of the Store protocol; every backend here has it.
    await store.compact(revision)  # type: ignore[attr-defined]


async def test_watch_before_compacted_revision_raises_compacted(store: Store) -> None:
    await write_history(store)
    await compact(store, 4)
    with pytest.raises(Compacted):
        await take(store, 0, 1)
    with pytest.raises(Compacted):
        await take(store, 2, 1)
    assert summary(await take(store, 3, 3)) == HISTORY[3:]
    # Compaction drops history only: the current state is intact.
    records, revision = await store.list("Service")
    assert [r.name for r in records] == ["a"] and revision == 5


async def test_many_concurrent_watchers_see_the_same_sequence(store: Store) -> None:
    watchers, writes = 40, 30
    async with asyncio.timeout(20), asyncio.TaskGroup() as tasks:
        streams = [tasks.create_task(take(store, 0, writes)) for _ in range(watchers)]
        for i in range(writes):
            await store.create("Service", f"ns{i % 3}", f"s{i}", doc(f"s{i}"))
    expected = [e.revision for e in streams[0].result()]
    assert expected == list(range(1, writes + 1))
    for stream in streams:
        assert summary(stream.result()) == summary(streams[0].result())


# ---- persistence -------------------------------------------------------------------------


async def test_state_and_history_survive_close_and_reopen(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    location = tmp_path / "persist"
    first = store_factory(location)
    await write_history(first)
    before = await first.list("Service"), await first.list("HTTPRoute")
    await first.close()

    second = store_factory(location)
    try:
        assert await second.revision() == 5
        assert (await second.list("Service"), await second.list("HTTPRoute")) == before
        assert summary(await take(second, 0, len(HISTORY))) == HISTORY
        created = await second.create("Service", "default", "next", doc("next"))
        assert created.mod_revision == 6
    finally:
        await second.close()


# ---- property: the store behaves like a dict with revisions ---------------------------------

KEYS = [(k, ns, n) for k in ("Service", "HTTPRoute") for ns in ("a", "b") for n in ("x", "y")]
STALE = 10_000  # a revision no example reaches
key_st = st.sampled_from(KEYS)
value_st = st.builds(
    lambda n, tier: doc("v", {"tier": tier}, n=n), st.integers(0, 3), st.sampled_from("pq")
)
expect_st = st.sampled_from([None, "current", "stale"])
single_st = st.one_of(
    st.tuples(st.just("create"), key_st, value_st, st.none()),
    st.tuples(st.just("update"), key_st, value_st, expect_st),
    st.tuples(st.just("delete"), key_st, st.none(), expect_st),
)
txn_op_st = st.one_of(
    st.tuples(st.just("put"), key_st, value_st, st.sampled_from([None, 0, "current", "stale"])),
    st.tuples(st.just("delete"), key_st, st.none(), expect_st),
)
step_st = st.one_of(
    single_st,
    st.tuples(
        st.just("txn"), st.lists(txn_op_st, min_size=1, max_size=4, unique_by=lambda o: o[1])
    ),
)

Model = dict[tuple[str, str, str], tuple[dict[str, Any], int, int]]


def resolve(expect: Any, key: tuple[str, str, str], model: Model) -> int | None:
    if expect == "current":
        return model[key][2] if key in model else 1
    return STALE if expect == "stale" else expect


def plan(step: Any, model: Model) -> tuple[list[Op], type[Exception] | None]:
    """The ops a step writes, and the error the contract says it meets (None: success)."""
    if step[0] == "txn":
        ops = [Op(a, *k, v, resolve(e, k, model)) for a, k, v, e in step[1]]
    else:
        action, key, value, expect = step
        expected = 0 if action == "create" else resolve(expect, key, model)
        ops = [Op("delete" if action == "delete" else "put", *key, value, expected)]
    must_exist = step[0] == "update"
    for op in ops:
        key = (op.kind, op.namespace, op.name)
        expected = op.expected_revision
        if key not in model:
            if op.action == "delete" or must_exist or expected:
                return ops, NotFound
        elif op.action == "put" and expected == 0:
            return ops, AlreadyExists
        elif expected is not None and expected != model[key][2]:
            return ops, Conflict
    return ops, None


def perform(store: Store, action: str, ops: list[Op]) -> Awaitable[Record | list[Record]]:
    op = ops[0]
    if action == "create":
        return store.create(op.kind, op.namespace, op.name, op.value or {})
    if action == "update":
        return store.update(op.kind, op.namespace, op.name, op.value or {}, op.expected_revision)
    if action == "delete":
        return store.delete(op.kind, op.namespace, op.name, op.expected_revision)
    return store.txn(ops)


async def run_steps(store: Store, steps: list[Any]) -> tuple[Model, int, int]:
    """Apply steps to the store and to a dict model, checking each outcome."""
    model: Model = {}
    revision = events = 0
    for step in steps:
        ops, error = plan(step, model)
        if error is not None:
            with pytest.raises(error):
                await perform(store, step[0], ops)
            continue
        result = await perform(store, step[0], ops)
        revision += 1
        events += len(ops)
        for op in ops:
            key = (op.kind, op.namespace, op.name)
            if op.action == "delete":
                del model[key]
            else:
                create = model[key][1] if key in model else revision
                model[key] = (op.value or {}, create, revision)
        records = result if isinstance(result, list) else [result]
        assert [r.mod_revision for r in records] == [revision] * len(ops)
    return model, revision, events


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(step_st, max_size=15))
def test_random_ops_match_a_dict_model_and_watch_replays_to_it(
    store_factory: StoreFactory, steps: list[Any]
) -> None:
    async def scenario(location: Path) -> None:
        store = store_factory(location)
        try:
            model, revision, events = await run_steps(store, steps)
            assert await store.revision() == revision
            state: Model = {}
            for kind in ("Service", "HTTPRoute"):
                records, read_at = await store.list(kind)
                assert read_at == revision
                state.update({r.key: (r.value, r.create_revision, r.mod_revision) for r in records})
                tier_p, _ = await store.list(kind, selector={"tier": "p"})
                assert {r.key for r in tier_p} == {
                    k
                    for k, v in model.items()
                    if k[0] == kind and v[0]["metadata"]["labels"]["tier"] == "p"
                }
            assert state == model
            replayed: Model = {}
            for event in await take(store, 0, events) if events else []:
                r = event.record
                if event.type == "PUT":
                    replayed[r.key] = (r.value, r.create_revision, r.mod_revision)
                else:
                    del replayed[r.key]
            assert replayed == model
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as location:
        asyncio.run(scenario(Path(location)))
