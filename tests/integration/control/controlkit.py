"""Helpers for the control-plane integration tests: a virtual clock, an HTTP caller, documents."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from gossamer.control.server import ControlServer


class ManualClock:
    """Virtual time for lease deadlines: tests move it forward explicitly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Api:
    def __init__(self, server: ControlServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.base = f"http://127.0.0.1:{server.port}"

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        async with self.session.request(method, self.base + path, data=data) as resp:
            raw = await resp.read()
            return resp.status, json.loads(raw) if raw else None

    async def apply(self, *documents: dict[str, Any], **extra: Any) -> tuple[int, Any]:
        return await self.call("POST", "/api/v1/apply", {"documents": list(documents), **extra})


def service(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def route(name: str, parent: str, backends: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, **meta},
        "spec": {"parentRefs": [{"name": parent}], "rules": [{"backendRefs": backends}]},
    }
