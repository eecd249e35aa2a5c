"""The sidecar's current snapshot, swapped atomically, plus on-demand discovery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gossamer.proxy.snapshot import ServiceView, Snapshot

DiscoverHook = Callable[[str], Awaitable[None]]


class SnapshotHolder:
    """Holds the last snapshot; readers take `current` once per request and keep it."""

    def __init__(self) -> None:
        self.current: Snapshot | None = None
        self.on_discover: DiscoverHook | None = None  # set by the runtime (control client)
        self._changed = asyncio.Event()
        self._asked: set[str] = set()

    def update(self, snapshot: Snapshot) -> None:
        self.current = snapshot
        # Wake every waiter, then give later waiters a fresh event.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def changed(self) -> None:
        """Wait for the next `update`."""
        await self._changed.wait()

    async def discover(
        self,
        key: str,
        timeout: float,  # noqa: ASYNC109 - the documented interface
        host: str | None = None,
    ) -> ServiceView | None:
        """Ask the control plane to add `key` ("ns/name") to the view; wait until it arrives.

        Returns the view (which may say `exists=False`), or None when the hook is missing,
        fails, or the entry does not arrive within `timeout`.
        """
        namespace, _, name = key.partition("/")
        lookup_name = host or f"{name}.{namespace}"
        view = self._lookup(lookup_name)
        if view is not None:
            return view
        hook = self.on_discover
        if hook is None:
            return None
        asking = key not in self._asked  # one ask per key in flight; the rest just wait
        try:
            async with asyncio.timeout(timeout):
                if asking:
                    self._asked.add(key)
                    await hook(key)
                while (view := self._lookup(lookup_name)) is None:
                    await self.changed()
                return view
        except Exception:  # the hook failed or the entry did not arrive in time
            return None
        finally:
            if asking:
                self._asked.discard(key)  # a later request may ask again

    def _lookup(self, host: str) -> ServiceView | None:
        current = self.current
        return current.lookup(host) if current is not None else None
