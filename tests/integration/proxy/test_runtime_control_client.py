"""The sidecar's control client against the real control plane (in-process, real sockets)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from gossamer.control.server import ControlServer, running
from gossamer.proxy.control_client import ControlClient, Registration
from gossamer.proxy.runtime import HolderSink
from gossamer.proxy.state import SnapshotHolder
from gossamer.store.sqlite import SQLiteStore

ROUTE = {
    "apiVersion": "gossamer.dev/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "ratings", "namespace": "default"},
    "spec": {
        "parentRefs": [{"name": "ratings"}],
        "rules": [{"backendRefs": [{"name": "ratings", "weight": 1}]}],
    },
}


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "gossamer.dev/v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": {}}  # fmt: skip


@contextlib.asynccontextmanager
async def control_plane(data: Path, port: int = 0, **kw: Any) -> AsyncIterator[ControlServer]:
    store = SQLiteStore(data / "store.db")
    try:
        async with running(ControlServer(store, port=port, **kw)) as server:
            yield server
    finally:
        await store.close()


async def api(server: ControlServer, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        resp = await http.request(method, path, json=body)
        return resp.status_code, resp.json()


def make_client(
    port: int, holder: SnapshotHolder, pid: str, healthy: asyncio.Event, **kw: Any
) -> ControlClient:
    client = ControlClient(
        f"http://127.0.0.1:{port}",
        pid,
        HolderSink(holder, "default"),
        registration=Registration(
            "reviews", "default", "127.0.0.1", 40006, 40080, {"version": "v1"}, 0.6
        ),
        watch=["default/ratings"],
        is_healthy=lambda: True,
        wait_healthy=healthy.wait,
        **kw,
    )
    holder.on_discover = client.watch
    return client


async def wait_version(holder: SnapshotHolder, at_least: int) -> None:
    while holder.current is None or holder.current.version < at_least:
        await holder.changed()


async def test_register_only_when_healthy_then_stream_ack_watch_and_deregister(
    tmp_path: Path,
) -> None:
    async with control_plane(tmp_path) as server:
        await api(server, "POST", "/api/v1/apply",
                  {"documents": [service("reviews"), service("ratings"), ROUTE]})  # fmt: skip
        holder, healthy = SnapshotHolder(), asyncio.Event()
        client = make_client(server.port, holder, "reviews-aaaa", healthy)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(client.run())
            await wait_version(holder, 1)  # the stream runs before registration
            assert holder.current is not None
            assert holder.current.lookup("ratings") is not None
            status, _ = await api(
                server, "GET", "/api/v1/namespaces/default/instances/reviews-aaaa"
            )
            assert status == 404 and not client.registered.is_set()
            healthy.set()
            await client.registered.wait()
            status, inst = await api(
                server, "GET", "/api/v1/namespaces/default/instances/reviews-aaaa"
            )
            assert status == 200 and inst["spec"]["port"] == 40006
            # our own registration reaches our view as an endpoint of reviews
            while True:
                view = holder.current.lookup("reviews") if holder.current else None
                if view is not None and any(True for _ in view.endpoints):
                    break
                await holder.changed()
            # ACKs: the control plane sees us at the version we hold
            while True:
                _, proxies = await api(server, "GET", "/api/v1/proxies")
                mine = [p for p in proxies["items"] if p["id"] == "reviews-aaaa"]
                if mine and mine[0]["ackedVersion"] == holder.current.version:
                    break
                await holder.changed()
            # on-demand discovery of a name nobody declared
            view = await holder.discover("default/catalog", 5.0)
            assert view is not None and not view.exists
            assert "default/catalog" in client.watching
            assert await client.deregister()
            status, _ = await api(
                server, "GET", "/api/v1/namespaces/default/instances/reviews-aaaa"
            )
            assert status == 404
            task.cancel()


async def test_lease_lost_registers_again(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as server:
        holder, healthy = SnapshotHolder(), asyncio.Event()
        healthy.set()
        client = make_client(server.port, holder, "reviews-bbbb", healthy)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(client.run())
            await client.registered.wait()
            # someone deletes our lease: the next heartbeat gets 404 and we register again
            status, _ = await api(server, "DELETE", "/api/v1/proxies/reviews-bbbb")
            assert status == 200
            await client.wait_until(lambda: client.registrations == 2)
            status, _ = await api(
                server, "GET", "/api/v1/namespaces/default/instances/reviews-bbbb"
            )
            assert status == 200
            task.cancel()


async def test_keeps_last_snapshot_while_control_is_down_and_resyncs(tmp_path: Path) -> None:
    holder, healthy = SnapshotHolder(), asyncio.Event()
    healthy.set()
    async with asyncio.TaskGroup() as tg:
        async with control_plane(tmp_path) as server:
            port = server.port
            await api(server, "POST", "/api/v1/apply", {"documents": [service("ratings")]})
            client = make_client(port, holder, "reviews-cccc", healthy)
            task = tg.create_task(client.run())
            await client.registered.wait()
            await wait_version(holder, 1)
            before = holder.current
        # the control plane is gone
        await client.wait_until(lambda: not client.stream_connected.is_set())
        assert holder.current is before  # still serving on the last snapshot
        async with control_plane(tmp_path, port=port) as again:
            await api(again, "POST", "/api/v1/apply", {"documents": [ROUTE]})
            while True:  # new config arrives after the reconnect
                view = holder.current.lookup("ratings") if holder.current else None
                if view is not None and view.routes:
                    break
                await holder.changed()
            assert client.reconnects >= 1
            status, _ = await api(again, "GET", "/api/v1/namespaces/default/instances/reviews-cccc")
            assert status == 200  # the lease survived the restart
            task.cancel()


async def test_dead_stream_detected_by_idle_timeout(tmp_path: Path) -> None:
    # the control plane sends heartbeats rarely; our idle limit is short: we reconnect
    async with control_plane(tmp_path, heartbeat_seconds=30.0) as server:
        holder, healthy = SnapshotHolder(), asyncio.Event()
        client = make_client(server.port, holder, "reviews-dddd", healthy, idle_timeout=0.3)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(client.run())
            await wait_version(holder, 0)
            while client.reconnects < 2:
                await holder.changed()  # each reconnect brings a fresh full snapshot
            assert client.snapshots_received >= 2
            task.cancel()
