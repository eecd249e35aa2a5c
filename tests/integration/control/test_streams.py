"""Proxy snapshot streams over real HTTP: snapshot then deltas, coalescing, ACKs, on-demand
watch, apply --wait."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from controlkit import Api, route, service


def registration(service_name: str, port: int, **labels: str) -> dict[str, Any]:
    return {"service": service_name, "address": "127.0.0.1", "port": port, "labels": labels}


class Stream:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, skip_heartbeats: bool = True) -> dict[str, Any]:
        while True:
            line = await self.resp.content.readline()
            assert line, "stream closed"
            msg = json.loads(line)
            if not (skip_heartbeats and msg["type"] == "heartbeat"):
                return msg


async def open_stream(api: Api, proxy_id: str, query: str = "") -> Stream:
    url = f"{api.base}/api/v1/proxies/{proxy_id}/stream?protocol=1&service=web&namespace=default{query}"
    resp = await api.session.get(url)
    assert resp.status == 200, await resp.text()
    return Stream(resp)


async def test_snapshot_then_deltas_and_ack(api: Api) -> None:
    await api.call(
        "POST", "/api/v1/proxies/reviews-1/register", registration("reviews", 9001, version="v1")
    )
    stream = await open_stream(api, "web-1", "&watch=default/reviews")
    snap = await stream.next()
    assert snap["type"] == "snapshot" and snap["protocol"] == 1
    assert set(snap["services"]) == {"default/reviews", "default/web"}
    assert snap["services"]["default/web"]["exists"] is False
    [endpoint] = snap["services"]["default/reviews"]["endpoints"]
    assert endpoint == {
        "id": "reviews-1",
        "address": "127.0.0.1",
        "port": 9001,
        "labels": {"version": "v1"},
    }

    await api.call(
        "POST", "/api/v1/proxies/reviews-2/register", registration("reviews", 9002, version="v2")
    )
    delta = await stream.next()
    assert delta["type"] == "delta" and delta["version"] > snap["version"]
    assert list(delta["services"]) == ["default/reviews"] and delta["removed"] == []
    assert [e["id"] for e in delta["services"]["default/reviews"]["endpoints"]] == [
        "reviews-1",
        "reviews-2",
    ]

    assert (await api.call("POST", "/api/v1/proxies/web-1/ack", {"version": delta["version"]}))[
        0
    ] == 200
    _, proxies = await api.call("GET", "/api/v1/proxies")
    [item] = proxies["items"]
    assert item["id"] == "web-1" and item["connected"] is True
    assert item["sentVersion"] == item["ackedVersion"] == delta["version"]
    assert item["watching"] == 2 and item["lastSeen"].endswith("Z")
    assert (await api.call("POST", "/api/v1/proxies/ghost/ack", {"version": 1}))[0] == 404
    assert (await api.call("POST", "/api/v1/proxies/web-1/ack", {"version": "x"}))[0] == 400

    # A route to a new backend pulls that backend into the view.
    await api.apply(route("reviews", "reviews", [{"name": "ratings"}]))
    delta = await stream.next()
    assert set(delta["services"]) == {"default/reviews", "default/ratings"}
    assert (
        delta["services"]["default/reviews"]["routes"][0]["backends"][0]["service"]
        == "default/ratings"
    )
    heartbeat = await stream.next(skip_heartbeats=False)
    assert heartbeat == {"type": "heartbeat", "version": delta["version"]}
    stream.resp.close()


async def test_burst_of_1000_changes_is_coalesced(api: Api) -> None:
    await api.call("POST", "/api/v1/proxies/reviews-1/register", registration("reviews", 9001))
    stream = await open_stream(api, "web-1", "&watch=default/reviews")
    await stream.next()
    store = api.server.store
    started = time.perf_counter()
    for i in range(1000):
        record = await store.get("Instance", "default", "reviews-1")
        assert record is not None
        value = {**record.value, "spec": {**record.value["spec"], "labels": {"n": str(i)}}}
        await store.update("Instance", "default", "reviews-1", value)
    writes_done = time.perf_counter()
    deltas = 0
    while True:
        delta = await stream.next()
        deltas += 1
        labels = delta["services"]["default/reviews"]["endpoints"][0]["labels"]
        if labels == {"n": "999"}:
            break
    elapsed = time.perf_counter() - started
    print(
        f"\n1000 store writes in {writes_done - started:.2f}s -> {deltas} deltas in {elapsed:.2f}s"
    )
    # At most one delta per 50 ms window, plus the one in flight at the start.
    assert deltas <= elapsed / 0.05 + 2
    assert deltas < 250  # 1,000 changes, at least 4x fewer pushes even on a loaded machine
    stream.resp.close()


async def test_on_demand_watch_adds_services(api: Api) -> None:
    await api.call("POST", "/api/v1/proxies/ratings-1/register", registration("ratings", 9003))
    stream = await open_stream(api, "web-1")
    snap = await stream.next()
    assert set(snap["services"]) == {"default/web"}
    status, out = await api.call(
        "POST", "/api/v1/proxies/web-1/watch", {"services": ["default/ratings", "shop/nope"]}
    )
    assert status == 200 and out["version"] >= snap["version"]
    delta = await stream.next()
    assert delta["services"]["default/ratings"]["endpoints"][0]["port"] == 9003
    assert delta["services"]["shop/nope"]["exists"] is False
    status, err = await api.call("POST", "/api/v1/proxies/web-1/watch", {"services": ["no-slash"]})
    assert "namespace/name" in err["message"]
    assert status == 400
    status, _ = await api.call("POST", "/api/v1/proxies/other/watch", {"services": ["default/a"]})
    assert status == 404
    stream.resp.close()


async def _ack_everything(api: Api, stream: Stream) -> None:
    while True:
        msg = await stream.next()
        await api.call("POST", "/api/v1/proxies/web-fast/ack", {"version": msg["version"]})


async def test_apply_wait_succeeds_when_every_touched_proxy_acks(api: Api) -> None:
    await api.apply(service("reviews"))
    stream = await open_stream(api, "web-fast", "&watch=default/reviews")
    async with asyncio.TaskGroup() as tasks:
        acker = tasks.create_task(_ack_everything(api, stream))
        status, out = await api.apply(
            route("reviews", "reviews", [{"name": "reviews"}]), waitSeconds=10
        )
        assert status == 200
        assert out["sync"] == {"complete": True, "pending": []}
        _, proxies = await api.call("GET", "/api/v1/proxies")
        assert proxies["items"][0]["ackedVersion"] >= out["revision"]
        acker.cancel()
    stream.resp.close()


async def test_apply_wait_times_out_naming_the_silent_proxy(api: Api) -> None:
    await api.apply(service("reviews"), service("ratings"))
    silent = await open_stream(api, "web-silent", "&watch=default/reviews")
    untouched = await open_stream(api, "web-untouched", "&watch=default/ratings")
    await silent.next()
    await untouched.next()
    started = time.perf_counter()
    status, out = await api.apply(
        route("reviews", "reviews", [{"name": "reviews"}]), waitSeconds=0.3
    )
    waited = time.perf_counter() - started
    assert status == 200
    assert out["sync"] == {"complete": False, "pending": ["web-silent"]}
    assert 0.25 <= waited < 3
    # Nothing touched by an apply: nothing to wait for.
    status, out = await api.apply(service("ratings"), waitSeconds=5)
    assert out["results"][0]["action"] == "unchanged" and out["sync"]["complete"] is True
    silent.resp.close()
    untouched.resp.close()


async def test_protocol_version_is_checked(api: Api) -> None:
    url = f"{api.base}/api/v1/proxies/web-1/stream?protocol=2&service=web"
    async with api.session.get(url) as resp:
        assert resp.status == 400
        body = await resp.json()
        assert body["reason"] == "UnsupportedProtocol" and "speaks 1" in body["message"]
    async with api.session.get(
        f"{api.base}/api/v1/proxies/web-1/stream?protocol=1&watch=bad"
    ) as resp:
        assert resp.status == 400


async def test_failing_probe_in_heartbeat_drops_the_endpoint_from_snapshots(api: Api) -> None:
    await api.call("POST", "/api/v1/proxies/reviews-1/register", registration("reviews", 9001))
    stream = await open_stream(api, "web-1", "&watch=default/reviews")
    snap = await stream.next()
    assert len(snap["services"]["default/reviews"]["endpoints"]) == 1
    await api.call("POST", "/api/v1/proxies/reviews-1/heartbeat", {"healthy": False})
    delta = await stream.next()
    entry = delta["services"]["default/reviews"]
    assert entry["exists"] is True and entry["endpoints"] == []
    await api.call("POST", "/api/v1/proxies/reviews-1/heartbeat", {"healthy": True})
    delta = await stream.next()
    assert [e["id"] for e in delta["services"]["default/reviews"]["endpoints"]] == ["reviews-1"]
    await api.call("DELETE", "/api/v1/proxies/reviews-1")
    delta = await stream.next()
    assert delta["services"]["default/reviews"]["exists"] is False  # implied service gone
    stream.resp.close()
