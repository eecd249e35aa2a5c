"""Fixtures for data-path tests: a DataPlane on port 0 and scripted upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from test_framing_kit import Handler, Upstream

from gossamer.proxy.dataplane import DataPlane
from gossamer.proxy.state import SnapshotHolder
from gossamer.proxy.telemetry.stats import Stats


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    plane = DataPlane(SnapshotHolder(), None, Stats(), header_timeout=0.3)
    try:
        yield plane
    finally:
        await plane.close()


@pytest.fixture
async def upstreams() -> AsyncIterator[Callable[[Handler], Awaitable[Upstream]]]:
    started: list[Upstream] = []

    async def start(handler: Handler) -> Upstream:
        upstream = await Upstream(handler).start()
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        upstream.close()
