"""Pick and open a Store from a URL (the control plane's --store flag)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gossamer.store.base import Store, StoreError
from gossamer.store.sqlite import SQLiteStore

DEFAULT_FILENAME = "gossamer.db"
ALLOWED = (
    "sqlite:///absolute/path.db, sqlite://relative.db (relative to the data dir), "
    "or nothing (<data dir>/gossamer.db)"
)


class StoreURLError(StoreError, ValueError):
    """The store URL cannot be used; the message says what is allowed."""


def store_path(url: str | None, data_dir: Path) -> Path:
    """The SQLite file a URL names (None: the default file in the data dir)."""
    if url is None or url == "":
        return data_dir / DEFAULT_FILENAME
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreURLError(f"store URL {url!r} has no scheme; use {ALLOWED}")
    if scheme == "etcd":
        raise StoreURLError(f"store URL {url!r}: etcd support is not built yet; use {ALLOWED}")
    if scheme != "sqlite":
        raise StoreURLError(
            f"store URL {url!r}: unknown scheme {scheme!r}; allowed schemes are 'sqlite' "
            f"and 'etcd' (not built yet): {ALLOWED}"
        )
    if rest in ("", "/") or rest.endswith("/"):
        raise StoreURLError(f"store URL {url!r} names no file; use {ALLOWED}")
    path = Path(rest)
    return path if path.is_absolute() else data_dir / path


def open_store(url: str | None, data_dir: Path, *, keep_revisions: int | None = None) -> Store:
    """Open the store a URL names, creating missing directories with mode 0700.
    keep_revisions: trim watch history to about the newest N revisions (None: keep all)."""
    path = store_path(url, data_dir)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return SQLiteStore(path, keep_revisions=keep_revisions)
    except (OSError, sqlite3.Error) as exc:
        raise StoreURLError(f"cannot open store at {path}: {exc}") from exc
