"""Proxy views and the snapshot fan-out.

Every service ENTRY any proxy watches is compiled and encoded to JSON bytes once, kept in
one shared cache, and reused by every proxy whose view holds it: a delta line is the
concatenation of those shared bytes. A store change recompiles only the entries MeshState
says it touched, and wakes only the proxies whose view holds an entry that really changed.
Decisions are synchronous methods; the stream handler does the waiting and writing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gossamer.control.compiler import (
    compile_entry,
    compile_mesh,
    encode_entry,
    encode_message,
    needed_services,
)
from gossamer.control.documents import rfc3339
from gossamer.control.state import MESH_KEY, MeshState
from gossamer.control.subscriber import Subscriber, assemble_line
from gossamer.store.base import Event

log = logging.getLogger(__name__)
MAX_REMEMBERED_DISCONNECTED = 1000
MAX_SHARED_LINES = 256


@dataclass(slots=True)
class CachedEntry:
    data: bytes  # the encoded ENTRY, shared by every view that holds it
    needs: frozenset[str]  # services its routes send or mirror to


class Fanout:
    def __init__(self, state: MeshState, wall_clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.wall_clock = wall_clock
        self.version = state.revision  # the revision the cache was last compiled at
        self.subscribers: dict[str, Subscriber] = {}  # connected streams
        self._gone: dict[str, Subscriber] = {}  # disconnected ones, oldest first, for listing
        self.has_work = asyncio.Event()
        self._cache: dict[str, CachedEntry] = {}
        self._watchers: dict[str, set[Subscriber]] = {}
        self._dirty: set[str] = set()
        self._mesh = encode_message(compile_mesh(state))
        self._progress = asyncio.Event()
        self._state_waiters = 0
        # Delta lines by content: after a change most proxies get the very same line, so it
        # is assembled once per flush, not once per proxy. Cleared whenever entries change.
        self._lines: dict[tuple[tuple[str, ...], bool, tuple[str, ...]], bytes] = {}

    # --- store side ------------------------------------------------------------------------

    def note_event(self, event: Event) -> None:
        self._dirty |= self.state.apply_event(event)
        self.has_work.set()
        if self._state_waiters:
            self._notify()

    async def wait_for_state(self, revision: int, seconds: float) -> bool:
        """Wait until the state has applied `revision` (the store's watch lags by moments)."""
        deadline = asyncio.get_running_loop().time() + seconds
        self._state_waiters += 1
        try:
            return await self._wait_until(lambda: self.state.revision >= revision, deadline)
        finally:
            self._state_waiters -= 1

    def mesh_changed(self) -> None:
        """Mesh-wide settings outside the store changed (the trust bundle): recompile."""
        self._dirty.add(MESH_KEY)
        self.has_work.set()

    def reset(self, state: MeshState) -> None:
        """Swap in a freshly loaded state; every watched entry is recompiled at next flush."""
        self.state = state
        self._lines.clear()
        self._dirty |= set(self._cache) | {MESH_KEY}
        self.has_work.set()

    def flush(self) -> int:
        """Recompile what the events since the last flush touched; wake affected proxies.
        Returns how many shared entries changed."""
        dirty, self._dirty = self._dirty, set()
        self.has_work.clear()
        self._lines.clear()
        self.version = self.state.revision
        touched: set[Subscriber] = set()
        if MESH_KEY in dirty:
            mesh = encode_message(compile_mesh(self.state))
            if mesh != self._mesh:
                self._mesh = mesh
                for sub in self.subscribers.values():
                    if sub.connected:
                        sub.mesh_pending = True
                        touched.add(sub)
        changed = 0
        reclose: set[Subscriber] = set()
        for key in dirty:
            cached = self._cache.get(key)
            if cached is None:
                continue  # nobody watches it
            try:
                entry = compile_entry(self.state, key)
                data = encode_entry(entry)
            except Exception:
                # A compiler bug for one service must not stop every other proxy's updates.
                log.exception("compiling %s failed; proxies keep its previous entry", key)
                continue
            if data == cached.data:
                continue
            changed += 1
            needs = frozenset(needed_services(entry))
            if needs != cached.needs:
                reclose.update(self._watchers[key])
            cached.data, cached.needs = data, needs
            for sub in self._watchers[key]:
                sub.pending.add(key)
                touched.add(sub)
        for sub in reclose:
            self._set_view(sub, self._closure(sub.roots))
        for sub in touched:
            sub.changed_version = self.version
            sub.wake.set()
        self._notify()
        return changed

    # --- proxy side ------------------------------------------------------------------------

    def subscribe(
        self, proxy_id: str, service: str, namespace: str, roots: Iterable[str]
    ) -> tuple[Subscriber, bytes]:
        """A new stream; returns its state and its first line (the full view)."""
        self._gone.pop(proxy_id, None)
        old = self.subscribers.pop(proxy_id, None)
        if old is not None:
            self._disconnect(old, replaced=True)
        sub = Subscriber(proxy_id, service, namespace, self.wall_clock())
        sub.roots = set(roots)
        self._set_view(sub, self._closure(sub.roots))
        sub.pending.clear()
        sub.removed.clear()
        self.subscribers[proxy_id] = sub
        sub.sent_version = self.version
        entries = [(k, self._cache[k].data) for k in sorted(sub.view)]
        return sub, assemble_line("snapshot", self.version, self._mesh, entries, None)

    def unsubscribe(self, sub: Subscriber) -> None:
        if self.subscribers.get(sub.id) is sub:
            self._disconnect(sub, replaced=False)

    def add_watch(self, proxy_id: str, keys: Iterable[str]) -> int:
        """On-demand discovery: more roots for a connected proxy. Raises KeyError if none."""
        sub = self.subscribers[proxy_id]
        if not sub.connected:
            raise KeyError(proxy_id)
        new = set(keys) - sub.roots
        if new:
            sub.roots |= new
            self._set_view(sub, self._closure(sub.roots))
            sub.wake.set()
        return self.version

    def next_line(self, sub: Subscriber) -> bytes | None:
        """The delta for everything pending, or None when nothing is."""
        sub.wake.clear()
        if not (sub.pending or sub.removed or sub.mesh_pending):
            return None
        key = (tuple(sorted(sub.pending)), sub.mesh_pending, tuple(sorted(sub.removed)))
        line = self._lines.get(key)
        if line is None:
            entries = [(k, self._cache[k].data) for k in key[0]]
            mesh = self._mesh if sub.mesh_pending else None
            line = assemble_line("delta", self.version, mesh, entries, list(key[2]))
            if len(self._lines) >= MAX_SHARED_LINES:
                self._lines.clear()
            self._lines[key] = line
        sub.pending.clear()
        sub.removed.clear()
        sub.mesh_pending = False
        sub.sent_version = self.version
        return line

    def heartbeat_line(self, sub: Subscriber) -> bytes:
        return b'{"type":"heartbeat","version":%d}\n' % sub.sent_version

    def ack(self, proxy_id: str, version: int) -> bool:
        sub = self.subscribers.get(proxy_id)
        if sub is None:
            return False
        sub.acked_version = max(sub.acked_version, min(version, sub.sent_version))
        sub.last_seen = self.wall_clock()
        self._notify()
        return True

    async def wait_for_sync(self, revision: int, seconds: float) -> dict[str, Any]:
        """Wait until every connected proxy whose view changed at or after `revision` has
        ACKed a version >= revision. Returns the protocol's "sync" body."""
        deadline = asyncio.get_running_loop().time() + seconds
        if not await self._wait_until(lambda: self.version >= revision, deadline):
            return {"complete": False, "pending": []}
        waiting = [
            s
            for s in self.subscribers.values()
            if s.connected and s.changed_version >= revision and s.acked_version < revision
        ]

        def behind() -> list[Subscriber]:
            return [s for s in waiting if s.connected and s.acked_version < revision]

        await self._wait_until(lambda: not behind(), deadline)
        pending = sorted(s.id for s in behind())
        return {"complete": not pending, "pending": pending}

    def listing(self) -> dict[str, Any]:
        items = [
            {
                "id": s.id,
                "service": s.service,
                "namespace": s.namespace,
                "connected": s.connected,
                "sentVersion": s.sent_version,
                "ackedVersion": s.acked_version,
                "lastSeen": rfc3339(s.last_seen),
                "watching": len(s.view),
            }
            for s in sorted([*self.subscribers.values(), *self._gone.values()], key=lambda s: s.id)
        ]
        return {"latest": self.version, "items": items}

    def cached_entries(self) -> int:
        return len(self._cache)

    # --- internals -------------------------------------------------------------------------

    def _notify(self) -> None:
        # Wake every wait_for_sync caller; each re-checks its own condition.
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()

    async def _wait_until(self, done: Callable[[], bool], deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except TimeoutError:
                return done()
        return True

    def _closure(self, roots: Iterable[str]) -> set[str]:
        view: set[str] = set()
        todo = list(roots)
        while todo:
            key = todo.pop()
            if key in view:
                continue
            view.add(key)
            todo.extend(self._entry(key).needs - view)
        return view

    def _entry(self, key: str) -> CachedEntry:
        cached = self._cache.get(key)
        if cached is None:
            entry = compile_entry(self.state, key)
            cached = CachedEntry(encode_entry(entry), frozenset(needed_services(entry)))
            self._cache[key] = cached
            self._watchers[key] = set()
            self._lines.clear()  # a line cached before may hold this key's older bytes
        return cached

    def _set_view(self, sub: Subscriber, view: set[str]) -> None:
        for key in view - sub.view:
            self._entry(key)
            self._watchers[key].add(sub)
            sub.pending.add(key)
            sub.removed.discard(key)
        for key in sub.view - view:
            self._release(sub, key)
            sub.pending.discard(key)
            sub.removed.add(key)
        sub.view = view

    def _release(self, sub: Subscriber, key: str) -> None:
        watchers = self._watchers.get(key)
        if watchers is None:
            return
        watchers.discard(sub)
        if not watchers:
            del self._watchers[key]
            del self._cache[key]

    def _disconnect(self, sub: Subscriber, replaced: bool) -> None:
        for key in sub.view:
            self._release(sub, key)
        sub.view = set()
        sub.pending.clear()
        sub.removed.clear()
        sub.connected = False
        sub.replaced = replaced
        sub.wake.set()
        if not replaced:
            del self.subscribers[sub.id]
            self._gone[sub.id] = sub  # remembered for listing, without a view
            if len(self._gone) > MAX_REMEMBERED_DISCONNECTED:
                self._gone.pop(next(iter(self._gone)))  # the longest gone
        self._notify()
