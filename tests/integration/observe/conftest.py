"""Observability tests: an in-process control plane with a settable wall clock, and the
sidecar process helpers of tests/integration/proxy."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "proxy"))

from observekit import Api, WallClock

from gossamer.control.server import ControlServer, running
from gossamer.store.sqlite import SQLiteStore


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@pytest.fixture
async def api(tmp_path: Path, wall: WallClock) -> AsyncIterator[Api]:
    store = SQLiteStore(tmp_path / "gossamer.db")
    server = ControlServer(store, port=0, wall_clock=wall)
    try:
        async with running(server), aiohttp.ClientSession() as session:
            yield Api(server, session)
    finally:
        await store.close()
