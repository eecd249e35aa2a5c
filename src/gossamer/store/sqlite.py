"""The Store on one SQLite file: WAL mode, synchronous=FULL, one writer thread.

Every write runs on a single dedicated writer thread (one connection), so commits are
serialised and the event loop never waits on fsync. Reads run on a small pool of reader
threads, each with its own connection (WAL lets them read while the writer commits).

History: every change is also written to an `events` table, so a watch can resume from
any revision not yet compacted. The newest events are also kept in memory (bounded by
`memory_events`) so live watchers do not touch the disk; a watcher that falls behind that
buffer re-reads the table in batches, so a slow watcher never grows memory.

One store instance owns the file (an flock on `<file>.lock` enforces it): the revision
counter lives in the writer thread.
"""

from __future__ import annotations

import asyncio
import builtins
import fcntl
import functools
import json
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gossamer.store.base import (
    AlreadyExists,
    Compacted,
    Conflict,
    Event,
    NotFound,
    Op,
    Record,
    StoreError,
)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
CREATE TABLE IF NOT EXISTS records (
  kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
  create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL,
  PRIMARY KEY (kind, namespace, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  revision INTEGER NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
  kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
  create_revision INTEGER NOT NULL,
  PRIMARY KEY (revision, seq)) WITHOUT ROWID;
"""
_RECORD_COLUMNS = "kind, namespace, name, value, create_revision, mod_revision"
_END = 1 << 62  # a cursor seq meaning "every event of this revision was delivered"


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _lock(path: Path) -> int:
    """Hold an exclusive lock beside the file: the revision counter lives in one process."""
    fd = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"{path} is in use by another store (process or open instance)") from None
    return fd


def _prepare(conn: sqlite3.Connection, path: Path) -> dict[str, int]:
    """Switch to WAL, create the tables if new, and read the stored counters."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise StoreError(f"{path}: cannot enable WAL mode (got {mode!r})")
    conn.executescript(_SCHEMA)
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def _encode(key: tuple[str, str, str], value: dict[str, Any] | None) -> str:
    if not isinstance(value, dict):
        raise ValueError(f"{_name(key)}: value must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{_name(key)}: value is not JSON: {exc}") from None


def _name(key: tuple[str, str, str]) -> str:
    return f"{key[0]} {key[1]}/{key[2]}"


def _record(row: tuple[Any, ...]) -> Record:
    return Record(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])


def _labels_match(value: dict[str, Any], selector: Mapping[str, str]) -> bool:
    metadata = value.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if not isinstance(labels, dict):
        return not selector
    return all(labels.get(k) == v for k, v in selector.items())


class SQLiteStore:
    """A Store backed by one SQLite file (see the module docstring)."""

    def __init__(
        self,
        path: Path | str,
        *,
        keep_revisions: int | None = None,
        memory_events: int = 4096,
        readers: int = 2,
    ):
        """keep_revisions: compact automatically so that at least the newest N revisions
        of history stay watchable (None: keep all until compact() is called)."""
        self.path = Path(path)
        self._lock_fd = _lock(self.path)
        if not self.path.exists():
            # Create the file ourselves so it (and the -wal/-shm files, which copy its
            # mode) is readable by this user only.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._conn = _connect(self.path)
        try:
            meta = _prepare(self._conn, self.path)
        except BaseException:
            self._conn.close()
            os.close(self._lock_fd)
            raise
        # Owned by the writer thread.
        self._revision: int = meta["revision"]
        self._kept_from: int = meta["compacted"]
        self._keep_revisions = keep_revisions
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="gossamer-store-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="gossamer-store-reader")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        # Watch state, touched only on the event loop thread.
        self._published = meta["revision"]
        self._compacted = meta["compacted"]
        self._recent: dict[int, tuple[Event, ...]] = {}  # revision -> its events
        self._recent_floor = self._published + 1  # memory holds every revision >= this
        self._recent_count = 0
        self._memory_events = memory_events
        self._changed = asyncio.Event()
        self._closed = False

    # ---- reads ---------------------------------------------------------------

    async def get(self, kind: str, namespace: str, name: str) -> Record | None:
        sql = f"SELECT {_RECORD_COLUMNS} FROM records WHERE kind=? AND namespace=? AND name=?"

        def read(conn: sqlite3.Connection) -> Record | None:
            row = conn.execute(sql, (kind, namespace, name)).fetchone()
            return _record(row) if row else None

        return await self._read(read)

    async def list(
        self,
        kind: str,
        namespace: str | None = None,
        selector: Mapping[str, str] | None = None,
    ) -> tuple[builtins.list[Record], int]:
        sql = f"SELECT {_RECORD_COLUMNS} FROM records WHERE kind=?"
        params: tuple[str, ...] = (kind,)
        if namespace is not None:
            sql, params = sql + " AND namespace=?", (kind, namespace)
        sql += " ORDER BY namespace, name"
        wanted = dict(selector or {})

        def read(conn: sqlite3.Connection) -> tuple[builtins.list[Record], int]:
            conn.execute("BEGIN")  # one snapshot for the rows and the revision
            try:
                rows = conn.execute(sql, params).fetchall()
                revision = conn.execute("SELECT value FROM meta WHERE key='revision'").fetchone()
            finally:
                conn.execute("COMMIT")
            records = [_record(row) for row in rows]
            return [r for r in records if _labels_match(r.value, wanted)], revision[0]

        return await self._read(read)

    async def revision(self) -> int:
        self._check_open()
        return self._published

    # ---- writes --------------------------------------------------------------

    async def create(self, kind: str, namespace: str, name: str, value: dict[str, Any]) -> Record:
        return (await self.txn([Op("put", kind, namespace, name, value, expected_revision=0)]))[0]

    async def update(
        self,
        kind: str,
        namespace: str,
        name: str,
        value: dict[str, Any],
        expected_revision: int | None = None,
    ) -> Record:
        op = Op("put", kind, namespace, name, value, expected_revision)
        return (await self._write([op], must_exist=True))[0]

    async def delete(
        self, kind: str, namespace: str, name: str, expected_revision: int | None = None
    ) -> Record:
        op = Op("delete", kind, namespace, name, None, expected_revision)
        return (await self.txn([op]))[0]

    async def txn(self, ops: builtins.list[Op]) -> builtins.list[Record]:
        return await self._write(ops, must_exist=False)

    async def compact(self, revision: int) -> None:
        """Forget history before `revision`: afterwards watch(from_revision) needs
        from_revision >= revision - 1 (as etcd: events at `revision` itself are kept)."""
        if revision > self._published:
            raise ValueError(f"cannot compact to {revision}: current revision is {self._published}")
        loop = asyncio.get_running_loop()

        def run() -> None:
            with self._transaction():
                self._drop_history(revision)
            self._kept_from = max(self._kept_from, revision)
            loop.call_soon_threadsafe(self._note_compacted, revision)

        await self._on_writer(run)

    def _drop_history(self, before: int) -> None:
        self._conn.execute("DELETE FROM events WHERE revision < ?", (before,))
        self._conn.execute("UPDATE meta SET value = max(value, ?) WHERE key='compacted'", (before,))

    async def _write(self, ops: builtins.list[Op], must_exist: bool) -> builtins.list[Record]:
        keys = [(op.kind, op.namespace, op.name) for op in ops]
        if len(set(keys)) != len(keys):
            raise ValueError("a transaction may name each record only once")
        for op in ops:
            if op.action not in ("put", "delete"):
                raise ValueError(f"{_name((op.kind, op.namespace, op.name))}: bad action")
        if not ops:
            return []
        loop = asyncio.get_running_loop()
        return await self._on_writer(lambda: self._commit(ops, must_exist, loop))

    def _commit(
        self, ops: builtins.list[Op], must_exist: bool, loop: asyncio.AbstractEventLoop
    ) -> builtins.list[Record]:
        """Runs on the writer thread: check every op, apply them all at the next revision."""
        conn = self._conn
        revision = self._revision + 1
        results: builtins.list[Record] = []
        events: builtins.list[Event] = []
        with self._transaction():
            for seq, op in enumerate(ops):
                key = (op.kind, op.namespace, op.name)
                text = _encode(key, op.value) if op.action == "put" else ""
                row = conn.execute(
                    "SELECT value, create_revision, mod_revision FROM records"
                    " WHERE kind=? AND namespace=? AND name=?",
                    key,
                ).fetchone()
                _check(op, key, row, must_exist)
                if op.action == "put":
                    create_revision = row[1] if row else revision
                    conn.execute(
                        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
                        " SET value=excluded.value, mod_revision=excluded.mod_revision",
                        (*key, text, create_revision, revision),
                    )
                else:
                    text, create_revision = row[0], row[1]
                    conn.execute("DELETE FROM records WHERE kind=? AND namespace=? AND name=?", key)
                conn.execute(
                    "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (revision, seq, op.action.upper(), *key, text, create_revision),
                )
                row_out = (*key, text, create_revision, revision)
                # Decode twice: the caller's record and the watchers' event never share a dict.
                results.append(_record(row_out))
                events.append(_event(op.action.upper(), row_out, revision))
            conn.execute("UPDATE meta SET value=? WHERE key='revision'", (revision,))
            compact_to = self._auto_compaction(revision)
            if compact_to:
                self._drop_history(compact_to)
        self._revision = revision
        if compact_to:
            self._kept_from = compact_to
            loop.call_soon_threadsafe(self._note_compacted, compact_to)
        # Scheduled before this job's result, so watchers and revision() see the change
        # before the writer's await returns.
        loop.call_soon_threadsafe(self._publish, revision, tuple(events))
        return results

    def _auto_compaction(self, revision: int) -> int | None:
        """Where to compact to after `revision`, if history is due for trimming. Trims in
        steps of an eighth of the window so most commits do not delete anything."""
        keep = self._keep_revisions
        if keep is None or revision - self._kept_from < keep + max(1, keep // 8):
            return None
        return revision - keep + 1

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    # ---- watch ---------------------------------------------------------------

    async def watch(
        self, from_revision: int, kinds: tuple[str, ...] | None = None
    ) -> AsyncIterator[Event]:
        self._check_open()
        if from_revision + 1 < self._compacted:
            raise Compacted(
                f"revision {from_revision} is compacted (oldest kept: {self._compacted})"
            )
        wanted = frozenset(kinds) if kinds is not None else None
        cursor = (from_revision, _END)  # the last event delivered: (revision, seq)
        while True:
            changed = self._changed
            if self._closed:
                raise StoreError("store is closed")
            needed = cursor[0] + 1 if cursor[1] == _END else cursor[0]
            if needed > self._published:
                await changed.wait()
                continue
            if needed >= self._recent_floor:
                batch, cursor = self._from_memory(cursor, wanted)
            else:
                batch, cursor = await self._read(
                    functools.partial(_read_history, cursor=cursor, wanted=wanted)
                )
            for event in batch:
                yield event

    def _from_memory(
        self, cursor: tuple[int, int], wanted: frozenset[str] | None, limit: int = 512
    ) -> tuple[builtins.list[Event], tuple[int, int]]:
        """Up to `limit` buffered events after `cursor`, and the cursor after them."""
        out: builtins.list[Event] = []
        for revision in range(max(cursor[0], self._recent_floor), self._published + 1):
            events = self._recent[revision]
            start = cursor[1] + 1 if revision == cursor[0] else 0
            for seq in range(start, len(events)):
                if wanted is None or events[seq].record.kind in wanted:
                    out.append(events[seq])
                    if len(out) >= limit:
                        return out, (revision, seq)
        return out, (self._published, _END)

    def _publish(self, revision: int, events: tuple[Event, ...]) -> None:
        self._recent[revision] = events
        self._recent_count += len(events)
        self._published = revision
        # Keep the newest revisions within the budget (always at least the latest one).
        while self._recent_count > self._memory_events and self._recent_floor < revision:
            self._recent_count -= len(self._recent.pop(self._recent_floor))
            self._recent_floor += 1
        self._wake()

    def _note_compacted(self, revision: int) -> None:
        self._compacted = max(self._compacted, revision)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- plumbing ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    async def _on_writer(self, fn: Callable[[], T]) -> T:
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, lambda: fn(self._reader_conn())
        )

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake()

        def shut_down() -> None:
            self._writer.shutdown(wait=True)
            self._readers.shutdown(wait=True)
            for conn in [self._conn, *self._reader_conns]:
                conn.close()
            os.close(self._lock_fd)

        await asyncio.to_thread(shut_down)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _check(
    op: Op, key: tuple[str, str, str], row: tuple[Any, ...] | None, must_exist: bool
) -> None:
    """Raise the error an op meets against the record's current row (None: absent)."""
    expected = op.expected_revision
    if row is None:
        if op.action == "delete" or must_exist or (expected is not None and expected > 0):
            raise NotFound(f"{_name(key)} not found")
        return
    if op.action == "put" and expected == 0:
        raise AlreadyExists(f"{_name(key)} already exists")
    if expected is not None and expected != row[2]:
        raise Conflict(f"{_name(key)} is at revision {row[2]}, not {expected}")


def _event(type_: str, row: tuple[Any, ...], revision: int) -> Event:
    return Event("PUT" if type_ == "PUT" else "DELETE", _record(row), revision)


def _read_history(
    conn: sqlite3.Connection,
    cursor: tuple[int, int],
    wanted: frozenset[str] | None,
    limit: int = 512,
) -> tuple[builtins.list[Event], tuple[int, int]]:
    """One batch of stored events after `cursor` and the cursor after it. Runs on a reader."""
    sql = (
        "SELECT revision, seq, type, kind, namespace, name, value, create_revision FROM events"
        " WHERE (revision, seq) > (?, ?)"
    )
    params: builtins.list[Any] = [*cursor]
    if wanted is not None:
        sql += f" AND kind IN ({','.join('?' * len(wanted))})"
        params.extend(sorted(wanted))
    sql += " ORDER BY revision, seq LIMIT ?"
    params.append(limit)
    conn.execute("BEGIN")
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.execute("COMMIT")
    needed = cursor[0] + 1 if cursor[1] == _END else cursor[0]
    if needed < meta["compacted"]:
        raise Compacted(f"revision {needed - 1} is compacted (oldest kept: {meta['compacted']})")
    events = [_event(r[2], (*r[3:8], r[0]), r[0]) for r in rows]
    # A short batch read everything up to the snapshot's revision.
    after = (rows[-1][0], rows[-1][1]) if len(rows) == limit else (meta["revision"], _END)
    return events, after
