"""Revisioned resource storage: one interface, an SQLite and (later) an etcd implementation."""

from gossamer.store.base import (
    AlreadyExists,
    Compacted,
    Conflict,
    Event,
    NotFound,
    Op,
    Record,
    Store,
    StoreError,
)

__all__ = [
    "AlreadyExists",
    "Compacted",
    "Conflict",
    "Event",
    "NotFound",
    "Op",
    "Record",
    "Store",
    "StoreError",
]
