"""The Store interface every backend implements (SQLite now, etcd next).

Shaped after etcd's model so an etcd backend maps one-to-one:
- one global, monotonically increasing revision; every write gets the next one;
- each record carries the revision that created it and the one that last changed it;
- optimistic concurrency: an update or delete may name the mod revision it expects;
- watch delivers every change after a revision, in order, and can resume from any
  revision still kept (older ones raise Compacted).
Values are canonical resource documents (JSON-able dicts); the store never interprets them,
except for metadata.labels, which list() can select on.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol


class StoreError(Exception):
    """Base of every store error."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Conflict(StoreError):
    """The record's mod revision is not the one the caller expected (a stale write)."""


class Compacted(StoreError):
    """A watch asked for a revision the store no longer keeps history for."""


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    namespace: str
    name: str
    value: dict[str, Any]
    create_revision: int
    mod_revision: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Event:
    type: Literal["PUT", "DELETE"]
    record: Record  # for DELETE: the record as it was, with mod_revision = the delete's revision
    revision: int


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of an all-or-nothing transaction.

    action "put": create or replace (expected_revision None = any; 0 = must not exist;
    N = must exist at mod revision N). "delete": remove (expected_revision None = any).
    """

    action: Literal["put", "delete"]
    kind: str
    namespace: str
    name: str
    value: dict[str, Any] | None = None
    expected_revision: int | None = None


class Store(Protocol):
    async def get(self, kind: str, namespace: str, name: str) -> Record | None: ...

    async def list(
        self,
        kind: str,
        namespace: str | None = None,
        selector: Mapping[str, str] | None = None,
    ) -> tuple[builtins.list[Record], int]:
        """Records of a kind (optionally one namespace, optionally whose metadata.labels
        contain every selector pair), sorted by (namespace, name), and the revision they
        were read at."""
        ...

    async def create(self, kind: str, namespace: str, name: str, value: dict[str, Any]) -> Record:
        """Raises AlreadyExists."""
        ...

    async def update(
        self,
        kind: str,
        namespace: str,
        name: str,
        value: dict[str, Any],
        expected_revision: int | None = None,
    ) -> Record:
        """Raises NotFound, or Conflict when expected_revision is given and stale."""
        ...

    async def delete(
        self, kind: str, namespace: str, name: str, expected_revision: int | None = None
    ) -> Record:
        """Returns the deleted record. Raises NotFound or Conflict."""
        ...

    async def txn(self, ops: builtins.list[Op]) -> builtins.list[Record]:
        """Apply every op at one revision, or none (raising the first failure's error).
        Returns the resulting records in op order (for deletes: the deleted record)."""
        ...

    async def revision(self) -> int:
        """The current revision (0 for an empty store)."""
        ...

    def watch(
        self, from_revision: int, kinds: tuple[str, ...] | None = None
    ) -> AsyncIterator[Event]:
        """Every event with revision > from_revision, in order, then live ones as they happen,
        until the iterator is closed. Raises Compacted if from_revision is too old."""
        ...

    async def compact(self, revision: int) -> None:
        """Drop history before `revision`: watching from revision-1 still works, older
        starts raise Compacted (etcd's semantics)."""
        ...

    async def close(self) -> None: ...
