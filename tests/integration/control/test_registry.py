"""Registry and leases over real HTTP, with a virtual clock moved by the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from controlkit import Api, ManualClock

from gossamer.control.server import ControlServer, running
from gossamer.store.sqlite import SQLiteStore

REG = {
    "service": "reviews",
    "address": "127.0.0.1",
    "port": 15006,
    "appPort": 9080,
    "labels": {"version": "v1"},
    "leaseSeconds": 10,
}


class InstanceWatch:
    """Reads the control plane's own watch stream: the test waits for events, never sleeps."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self) -> dict[str, Any]:
        return json.loads(await self.resp.content.readline())


async def open_watch(api: Api) -> tuple[aiohttp.ClientResponse, InstanceWatch]:
    _, listed = await api.call("GET", "/api/v1/instances")
    url = f"{api.base}/api/v1/watch?kinds=Instance&fromRevision={listed['revision']}"
    resp = await api.session.get(url)
    return resp, InstanceWatch(resp)


async def test_register_expire_and_recover(api: Api, clock: ManualClock) -> None:
    status, inst = await api.call("POST", "/api/v1/proxies/reviews-1a2b/register", REG)
    assert status == 200
    assert inst["kind"] == "Instance" and inst["status"] == {"health": "healthy"}
    assert inst["spec"]["proxy"] == "reviews-1a2b" and inst["spec"]["appPort"] == 9080

    _, found = await api.call("GET", "/api/v1/discovery/services")
    assert found["items"] == [
        {"namespace": "default", "name": "reviews", "healthy": 1, "total": 1, "declared": False}
    ]
    _, eps = await api.call(
        "GET",
        "/api/v1/discovery/namespaces/default/services/reviews/endpoints?labelSelector=version=v1",
    )
    assert eps["items"] == [
        {
            "name": "reviews-1a2b",
            "address": "127.0.0.1",
            "port": 15006,
            "labels": {"version": "v1"},
            "proxy": "reviews-1a2b",
        }
    ]
    _, eps = await api.call(
        "GET",
        "/api/v1/discovery/namespaces/default/services/reviews/endpoints?labelSelector=version=v2",
    )
    assert eps["items"] == []

    resp, watch = await open_watch(api)
    async with resp:
        # Heartbeats within the lease write nothing.
        for _ in range(3):
            clock.now += 3
            assert (
                await api.call("POST", "/api/v1/proxies/reviews-1a2b/heartbeat", {"healthy": True})
            )[0] == 200
        clock.now += 10  # missed renewals: one full lease since the last heartbeat
        api.server.registry.poke()
        event = await watch.next()
        assert event["type"] == "PUT" and event["object"]["status"]["health"] == "unhealthy"
        _, eps = await api.call(
            "GET", "/api/v1/discovery/namespaces/default/services/reviews/endpoints"
        )
        assert eps["items"] == []

        await api.call("POST", "/api/v1/proxies/reviews-1a2b/heartbeat", {"healthy": True})
        assert (await watch.next())["object"]["status"]["health"] == "healthy"
        await api.call("POST", "/api/v1/proxies/reviews-1a2b/heartbeat", {"healthy": False})
        assert (await watch.next())["object"]["status"]["health"] == "unhealthy"
        await api.call("POST", "/api/v1/proxies/reviews-1a2b/heartbeat", {})
        assert (await watch.next())["object"]["status"]["health"] == "healthy"

        clock.now += 30  # three leases without a word: gone
        api.server.registry.poke()
        first = await watch.next()
        if first["type"] == "PUT":  # the unhealthy mark may come first
            first = await watch.next()
        assert first["type"] == "DELETE" and first["object"]["metadata"]["name"] == "reviews-1a2b"
    status, err = await api.call(
        "POST", "/api/v1/proxies/reviews-1a2b/heartbeat", {"healthy": True}
    )
    assert status == 404 and "register again" in err["message"]


async def test_deregister_deletes_at_once(api: Api) -> None:
    await api.call("POST", "/api/v1/proxies/reviews-1/register", REG)
    resp, watch = await open_watch(api)
    async with resp:
        assert (await api.call("DELETE", "/api/v1/proxies/reviews-1"))[0] == 200
        event = await watch.next()
        assert event["type"] == "DELETE"
    assert (await api.call("DELETE", "/api/v1/proxies/reviews-1"))[0] == 404
    _, found = await api.call("GET", "/api/v1/discovery/services")
    assert found["items"] == []


async def test_bad_registrations(api: Api) -> None:
    body = {**REG, "port": 0, "leaseSeconds": -1, "colour": "red"}
    status, err = await api.call("POST", "/api/v1/proxies/reviews-1/register", body)
    assert status == 422
    fields = {e["field"] for e in err["errors"]}
    assert {"colour", "spec.port", "spec.leaseSeconds"} <= fields
    status, err = await api.call("POST", "/api/v1/proxies/Not_A_Label/register", REG)
    assert status == 400
    status, err = await api.call("POST", "/api/v1/proxies/reviews-1/heartbeat", {"healthy": "yes"})
    assert status == 400


async def test_restart_gives_stored_instances_fresh_leases(tmp_path: Path) -> None:
    clock = ManualClock()
    store = SQLiteStore(tmp_path / "g.db")
    try:
        async with aiohttp.ClientSession() as session:
            server = ControlServer(store, port=0, clock=clock)
            async with running(server):
                api = Api(server, session)
                await api.call("POST", "/api/v1/proxies/reviews-1/register", REG)
            clock.now += 25  # the control plane was down longer than 2 leases
            server = ControlServer(store, port=0, clock=clock)
            async with running(server):
                api = Api(server, session)
                assert await server.registry.expire_due() == 0  # a fresh lease: nothing due
                status, _ = await api.call(
                    "POST", "/api/v1/proxies/reviews-1/heartbeat", {"healthy": True}
                )
                assert status == 200
                _, inst = await api.call("GET", "/api/v1/namespaces/default/instances/reviews-1")
                assert inst["status"]["health"] == "healthy"
    finally:
        await store.close()
