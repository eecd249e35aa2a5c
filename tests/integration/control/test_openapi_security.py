"""With its CA and credentials on, the control plane's `/openapi.json` documents every route
it serves — tokens, certificates, trust bundle, CA, identities, rotation, login/session,
audit — and says which take a credential; the document itself needs none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from gossamer.control.auth import OPEN_PATHS
from gossamer.control.security import Security
from gossamer.control.server import ControlServer, running
from gossamer.model import KINDS
from gossamer.store.sqlite import SQLiteStore

SECURITY_ROUTES = {
    ("get", "/api/v1/trust-bundle"), ("get", "/api/v1/ca"), ("post", "/api/v1/ca/rotation"),
    ("get", "/api/v1/identities"), ("post", "/api/v1/proxies/{id}/certificate"),
    ("get", "/api/v1/tokens"), ("post", "/api/v1/tokens"), ("delete", "/api/v1/tokens/{token}"),
    ("post", "/api/v1/login"), ("post", "/api/v1/logout"), ("get", "/api/v1/session"),
    ("get", "/api/v1/audit"),
}  # fmt: skip


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[ControlServer]:
    security = Security.open(tmp_path, "cluster.local")
    store = SQLiteStore(tmp_path / "gossamer.db")
    try:
        async with running(ControlServer(store, port=0, security=security)) as server:
            yield server
    finally:
        await store.close()


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    served = set()
    for route in app.router.routes():
        method = route.method.lower()
        path = route.resource.canonical if route.resource else ""
        if method == "head" or path == "/" or path.startswith("/ui/"):
            continue  # the dashboard's files, not API
        if "{plural}" in path:
            served.update((method, path.replace("{plural}", i.plural)) for i in KINDS.values())
        else:
            served.add((method, path))
    return served


async def test_openapi_documents_every_security_route_and_its_credentials(
    secured: ControlServer,
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{secured.port}") as http:
        answer = await http.get("/openapi.json")  # no credential: the document is open
    assert answer.status_code == 200
    spec: dict[str, Any] = answer.json()
    assert secured.app is not None
    served = served_routes(secured.app)
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert SECURITY_ROUTES <= served
    assert served == documented
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    for path, ops in spec["paths"].items():
        for op in ops.values():
            if path in OPEN_PATHS:
                assert op["security"] == [], path
            else:
                assert op["security"] == [{"bearer": []}, {"session": []}], path
                assert {"401", "403"} <= set(op["responses"]), path
    create = spec["paths"]["/api/v1/tokens"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"service", "operator", "role", "ttlSeconds"} <= set(request["properties"])
