"""A real control plane on port 0 over a real SQLite store, and an HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from controlkit import Api, ManualClock

from gossamer.control.server import ControlServer, running
from gossamer.store.sqlite import SQLiteStore


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def api(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Api]:
    store = SQLiteStore(tmp_path / "gossamer.db")
    server = ControlServer(store, port=0, clock=clock, heartbeat_seconds=0.5)
    try:
        async with running(server), aiohttp.ClientSession() as session:
            yield Api(server, session)
    finally:
        await store.close()
