"""SQLite-specific behaviour beyond the conformance suite: durability settings, bulk speed,
bounded watch memory, compaction persistence, closing."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conformance import doc

from gossamer.store import Compacted, Event, Op, StoreError
from gossamer.store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "g.db")
    yield opened
    await opened.close()


async def drain(it: AsyncIterator[Event], count: int) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(20):
        async for event in it:
            out.append(event)
            if len(out) == count:
                break
    return out


async def test_file_is_wal_with_full_sync_and_private(store: SQLiteStore, tmp_path: Path) -> None:
    await store.create("Service", "default", "a", doc("a"))
    with contextlib.closing(sqlite3.connect(tmp_path / "g.db")) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    for name in ("g.db", "g.db-wal"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


async def test_bulk_txn_of_10000_puts_keeps_the_loop_turning(
    store: SQLiteStore,
) -> None:
    ops = [
        Op("put", "Service", f"ns{i % 10}", f"svc-{i}", doc(f"svc-{i}", n=i)) for i in range(10_000)
    ]
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)  # sampling the loop's latency, not waiting for readiness
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(ticker())
        started = time.perf_counter()
        results = await store.txn(ops)
        elapsed = time.perf_counter() - started
        done.set()
    records, revision = await store.list("Service")
    stall = max(gaps, default=elapsed)
    print(f"txn of 10000 puts: {elapsed:.3f} s; longest loop stall {stall * 1000:.1f} ms")
    # The write runs on the store's writer thread: the loop keeps turning meanwhile. (How
    # fast it is belongs to the benchmarks, not to an assertion on a shared machine.)
    assert len(gaps) >= 3
    assert len(results) == len(records) == 10_000 and revision == 1
    events = await drain(store.watch(0), 10_000)
    assert [e.record.name for e in events] == [op.name for op in ops]


async def test_watcher_behind_the_memory_buffer_reads_history_in_order(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", memory_events=16)
    try:
        it = store.watch(0, kinds=("Service",))
        first = await asyncio.gather(
            drain(it, 1), store.create("Service", "default", "s0", doc("s0"))
        )
        # The watcher stops reading while far more than the buffer is written, including
        # one transaction larger than the buffer.
        for i in range(1, 40):
            await store.create("Service", "default", f"s{i}", doc(f"s{i}"))
            await store.create("HTTPRoute", "default", f"r{i}", doc(f"r{i}"))
        await store.txn([Op("put", "Service", "bulk", f"b{i}", doc(f"b{i}")) for i in range(1500)])
        assert store._recent_count <= 1500  # the buffer keeps only the newest revisions
        rest = await drain(it, 39 + 1500)
        await it.aclose()  # type: ignore[attr-defined]
        names = [e.record.name for e in first[0] + rest]
        assert names == [f"s{i}" for i in range(40)] + [f"b{i}" for i in range(1500)]
        assert [e.revision for e in rest[-1500:]] == [80] * 1500
    finally:
        await store.close()


async def test_lagging_watcher_gets_compacted_when_its_history_is_dropped(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", memory_events=4)
    try:
        it = store.watch(0)
        first = await asyncio.gather(drain(it, 1), store.create("Service", "d", "a", doc("a")))
        for i in range(20):
            await store.update("Service", "d", "a", doc("a", n=i))
        await store.compact(15)
        with pytest.raises(Compacted):
            await drain(it, 5)
        assert first[0][0].revision == 1
    finally:
        await store.close()


async def test_compaction_is_kept_across_reopen(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db")
    for i in range(5):
        await store.create("Service", "d", f"s{i}", doc(f"s{i}"))
    with pytest.raises(ValueError):
        await store.compact(6)
    await store.compact(4)
    await store.close()
    store = SQLiteStore(tmp_path / "g.db")
    try:
        with pytest.raises(Compacted):
            await drain(store.watch(2), 1)
        assert [e.revision for e in await drain(store.watch(3), 2)] == [4, 5]
        with contextlib.closing(sqlite3.connect(tmp_path / "g.db")) as other:
            assert other.execute("SELECT count(*) FROM events").fetchone() == (2,)
    finally:
        await store.close()


@pytest.mark.parametrize("bad", [{"x": {1, 2}}, {"x": math.nan}, ["not", "a", "dict"]])
async def test_values_that_are_not_json_objects_are_refused_and_nothing_is_written(
    store: SQLiteStore, bad: object
) -> None:
    with pytest.raises(ValueError, match="Service default/bad"):
        await store.txn(
            [
                Op("put", "Service", "default", "good", doc("good")),
                Op("put", "Service", "default", "bad", bad),  # type: ignore[arg-type]
            ]
        )
    assert await store.revision() == 0
    assert await store.get("Service", "default", "good") is None
    await store.create("Service", "default", "good", doc("good"))
    assert await store.revision() == 1


async def test_close_ends_watchers_and_refuses_further_calls(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db")
    await store.create("Service", "d", "a", doc("a"))
    caught_up = asyncio.Event()
    outcome: list[BaseException] = []

    async def watcher() -> None:
        try:
            async for _ in store.watch(0):
                # Set before asking for more: the next step parks on the store's wake-up.
                caught_up.set()
        except StoreError as exc:
            outcome.append(exc)

    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        tasks.create_task(watcher())
        await caught_up.wait()
        await store.close()
    assert len(outcome) == 1 and "closed" in str(outcome[0])
    with pytest.raises(StoreError, match="closed"):
        await store.get("Service", "d", "a")
    with pytest.raises(StoreError, match="closed"):
        await store.create("Service", "d", "b", doc("b"))
    await store.close()  # closing twice is harmless


async def test_a_second_store_on_the_same_file_is_refused_until_the_first_closes(
    store: SQLiteStore, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="in use"):
        SQLiteStore(tmp_path / "g.db")
    await store.create("Service", "d", "a", doc("a"))
    await store.close()
    again = SQLiteStore(tmp_path / "g.db")
    try:
        assert await again.revision() == 1
    finally:
        await again.close()


async def test_keep_revisions_trims_history_but_keeps_the_newest_window(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", keep_revisions=10)
    try:
        for i in range(50):
            await store.create("Service", "d", f"s{i}", doc(f"s{i}"))
        with pytest.raises(Compacted):
            await drain(store.watch(0), 1)
        window = await drain(store.watch(40), 10)
        assert [e.record.name for e in window] == [f"s{i}" for i in range(40, 50)]
        with contextlib.closing(sqlite3.connect(tmp_path / "g.db")) as other:
            (kept,) = other.execute("SELECT count(*) FROM events").fetchone()
        assert 10 <= kept <= 10 + 10 // 8 + 1
        assert len((await store.list("Service"))[0]) == 50  # state is never trimmed
    finally:
        await store.close()
