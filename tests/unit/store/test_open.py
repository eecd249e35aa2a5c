"""open_store: which file a store URL names, and the errors for the ones it cannot use."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from conformance import doc

from gossamer.store.open import StoreURLError, open_store, store_path
from gossamer.store.sqlite import SQLiteStore


async def test_default_is_gossamer_db_in_a_private_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    store = open_store(None, data_dir)
    try:
        assert isinstance(store, SQLiteStore)
        await store.create("Service", "default", "a", doc("a"))
    finally:
        await store.close()
    assert (data_dir / "gossamer.db").is_file()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    reopened = open_store(None, data_dir)
    try:
        assert await reopened.get("Service", "default", "a") is not None
    finally:
        await reopened.close()


def test_sqlite_urls_name_absolute_or_data_dir_relative_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert store_path(f"sqlite://{tmp_path}/abs.db", data_dir) == tmp_path / "abs.db"
    assert store_path("sqlite:///var/lib/g.db", data_dir) == Path("/var/lib/g.db")
    assert store_path("sqlite://rel.db", data_dir) == data_dir / "rel.db"
    assert store_path("sqlite://sub/rel.db", data_dir) == data_dir / "sub" / "rel.db"
    assert store_path("", data_dir) == data_dir / "gossamer.db"


async def test_open_creates_missing_parent_directories(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/a/b/mesh.db", tmp_path / "unused")
    try:
        await store.create("Service", "default", "a", doc("a"))
    finally:
        await store.close()
    assert (tmp_path / "a" / "b" / "mesh.db").is_file()
    assert not (tmp_path / "unused").exists()


def test_etcd_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(StoreURLError, match="etcd support is not built yet"):
        open_store("etcd://127.0.0.1:2379", tmp_path)


@pytest.mark.parametrize(
    "url", ["postgres://db/mesh", "mesh.db", "sqlite://", "sqlite:///", "sqlite://dir/"]
)
def test_unusable_urls_name_what_is_allowed(tmp_path: Path, url: str) -> None:
    with pytest.raises(StoreURLError) as caught:
        open_store(url, tmp_path)
    message = str(caught.value)
    assert url in message and "sqlite:///absolute/path.db" in message
    assert isinstance(caught.value, ValueError)


def test_unknown_scheme_names_the_allowed_schemes(tmp_path: Path) -> None:
    with pytest.raises(StoreURLError, match=r"unknown scheme 'postgres'.*'sqlite'.*'etcd'"):
        open_store("postgres://db/mesh", tmp_path)


def test_a_path_that_cannot_be_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreURLError, match=r"cannot open store at .*dir\.db"):
        open_store("sqlite://dir.db", tmp_path)
    (tmp_path / "junk.db").write_bytes(b"this is not an sqlite file" * 100)
    with pytest.raises(StoreURLError, match=r"cannot open store at .*junk\.db"):
        open_store("sqlite://junk.db", tmp_path)
