"""The inbound authorization hook on a real listener: fail closed before the first snapshot,
400 for refused paths, 403 with the deciding policy, the normalised path forwarded, denials
counted. The caller's identity comes through the listener's identify hook (as the mTLS
wiring will set it), so principals are matched on the real data path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvloop
from test_dataplane import get, install, reason
from test_framing_kit import keepalive_ok

from gossamer.proxy.dataplane import DataPlane
from gossamer.proxy.inbound.authz import InboundAuthorizer
from gossamer.proxy.state import SnapshotHolder
from gossamer.proxy.telemetry.stats import Stats

pytestmark = pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy"')
FRONTEND = "spiffe://cluster.local/ns/default/sa/frontend"


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return uvloop.EventLoopPolicy()


def own_entry(authz: list[dict[str, Any]]) -> dict[str, Any]:
    return {"default/reviews": {"name": "reviews", "namespace": "default", "authz": authz}}


@pytest.fixture
async def inbound(upstreams: Any) -> AsyncIterator[tuple[DataPlane, int, list[str | None]]]:
    caller: list[str | None] = [FRONTEND]  # what identify reports for the next connection
    holder, stats = SnapshotHolder(), Stats()
    authorize = InboundAuthorizer(holder, "default/reviews", {"version": "v2"}, stats)
    plane = DataPlane(holder, None, stats, authorize=authorize, identify=lambda _t: caller[0])
    try:
        app = await upstreams(keepalive_ok)
        port = await plane.start_inbound("127.0.0.1", 0, "127.0.0.1", app.port)
        yield plane, port, caller
    finally:
        await plane.close()


def request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: reviews\r\n\r\n".encode()


async def test_fails_closed_until_the_first_snapshot(inbound: Any) -> None:
    plane, port, _ = inbound
    response = await get(port, request("/"))
    assert response.startswith(b"HTTP/1.1 403 ") and reason(response) == b"rbac_denied"
    install(plane, own_entry([]))
    assert (await get(port, request("/x//y/../z"))).endswith(b"/x/z")  # normalised
    absolute = b"GET http://reviews/a/%2e%2e/b HTTP/1.1\r\nHost: reviews\r\n\r\n"
    assert (await get(port, absolute)).endswith(b"/b")
    asterisk = await get(port, b"OPTIONS * HTTP/1.1\r\nHost: reviews\r\n\r\n")
    assert asterisk.startswith(b"HTTP/1.1 200 ") and asterisk.endswith(b"*")


async def test_policies_principals_and_paths(inbound: Any) -> None:
    plane, port, caller = inbound
    install(
        plane,
        own_entry(
            [
                {
                    "name": "default/deny-admin",
                    "action": "DENY",
                    "rules": [{"to": [{"paths": ["/admin", "/admin/*"]}]}],
                },
                {
                    "name": "default/frontend-only",
                    "action": "ALLOW",
                    "selector": {"version": "v2"},
                    "rules": [{"from": [{"principals": ["cluster.local/ns/default/sa/frontend"]}]}],
                },
            ]
        ),
    )
    assert (await get(port, request("/api/%7eme"))).endswith(b"/api/~me")
    denied = await get(port, request("/api/../admin/x"))
    assert denied.startswith(b"HTTP/1.1 403 ") and reason(denied) == b"rbac_denied"
    assert b"x-gossamer-policy: default/deny-admin\r\n" in denied
    refused = await get(port, request("/a%2fadmin"))
    assert refused.startswith(b"HTTP/1.1 400 ") and reason(refused) == b"bad_path"

    caller[0] = "spiffe://cluster.local/ns/jobs/sa/batch"
    other = await get(port, request("/api"))
    assert other.startswith(b"HTTP/1.1 403 ") and b"x-gossamer-policy" not in other
    caller[0] = None  # plaintext: no principal
    assert (await get(port, request("/api"))).startswith(b"HTTP/1.1 403 ")

    assert plane.stats.authz_denials == {
        ("deny_rule", "default/deny-admin"): 1,
        ("no_allow_match", ""): 2,
    }
