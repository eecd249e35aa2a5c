"""Helpers for the observability tests: a settable wall clock and an HTTP caller."""

from __future__ import annotations

import aiohttp

from gossamer.control.server import ControlServer


class WallClock:
    def __init__(self) -> None:
        self.now = 1_764_120_000.0

    def __call__(self) -> float:
        return self.now


class Api:
    def __init__(self, server: ControlServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.base = f"http://127.0.0.1:{server.port}"

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        async with self.session.request(method, self.base + path, json=body) as resp:
            return resp.status, await resp.json(content_type=None)
