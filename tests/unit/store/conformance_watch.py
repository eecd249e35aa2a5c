"""Store conformance: watch, compaction and persistence (see conformance.py)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from conformance import StoreFactory, doc, summary, take

from gossamer.store import Compacted, Event, Op, Store

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
    await store.compact(revision)


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
