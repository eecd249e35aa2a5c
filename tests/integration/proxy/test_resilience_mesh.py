"""The mesh under constant load while things go wrong, with real processes: a control plane,
three echo instances behind `gossamer run`, and a client sidecar the load goes through.

Leases are 1.5 s and route timeouts a fraction of a second, so each case takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import Load, Proc, Procs

LEASE = "1.5s"


def route(weights: dict[str, int] | None = None, backend_timeout: str = "300ms") -> dict[str, Any]:
    refs = (
        [{"name": "echo", "labels": {"version": v}, "weight": w} for v, w in weights.items()]
        if weights
        else [{"name": "echo", "weight": 1}]
    )
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": "echo"}],
            "rules": [
                {
                    "backendRefs": refs,
                    "timeouts": {"request": "3s", "backendRequest": backend_timeout},
                    "retry": {"attempts": 3, "backoff": "10ms", "codes": [502, 503, 504]},
                }
            ],
        },
    }


@dataclass
class Mesh:
    procs: Procs
    control: Proc
    instances: list[Proc]
    client: Proc

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control.port('port')}"

    async def apply(self, *docs: dict[str, Any], wait: float = 10.0) -> dict[str, Any]:
        async with httpx.AsyncClient(
            base_url=self.control_url, timeout=wait + 5, headers=self.control.auth_headers()
        ) as http:
            resp = await http.post(
                "/api/v1/apply", json={"documents": list(docs), "waitSeconds": wait}
            )
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
            assert body["sync"]["complete"], body
            return body

    async def client_config(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            resp = await http.get(f"http://127.0.0.1:{self.client.port('admin')}/config")
            result: dict[str, Any] = resp.json()
            return result

    async def endpoint_ids(self) -> set[str]:
        entry = (await self.client_config())["snapshot"]["services"].get("default/echo", {})
        return {ep["id"] for ep in entry.get("endpoints", [])}

    async def metric(self, name: str) -> float:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{self.client.port('stats')}/metrics")).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    procs = Procs(tmp_path)
    try:
        control = await procs.control()
        port = control.port("port")
        started = [
            procs.instance(port, "echo", f"echo-{i}", labels=f"version=v{i}", lease=LEASE)
            for i in (1, 2, 3)
        ]
        instances = list(await asyncio.gather(*started))
        client = await procs.instance(
            port, "client", "client", lease=LEASE, extra=["--upstream", "echo=0"]
        )
        m = Mesh(procs, control, instances, client)
        await m.apply(route())  # returns once the client ACKed it: all three are in its view
        assert len(await m.endpoint_ids()) == 3
        yield m
    finally:
        await procs.close()


@contextlib.asynccontextmanager
async def steady_load(mesh: Mesh) -> AsyncIterator[Load]:
    """Three keep-alive clients through the client sidecar, running for the block."""
    lg = Load(mesh.client.port("outbound"), "echo", workers=3)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(lg.run())
        try:
            await lg.requests(30)
            assert lg.failures == [], lg.failures
            assert set(lg.by_instance) == {"echo-1", "echo-2", "echo-3"}
            yield lg
        finally:
            lg.stop()


async def wait_ids(mesh: Mesh, load: Load, predicate: Any, limit: float = 15.0) -> set[str]:
    """Re-read the client's view each few requests until `predicate(ids)` holds."""
    deadline = time.monotonic() + limit
    while not predicate(ids := await mesh.endpoint_ids()):
        assert time.monotonic() < deadline, f"client view still {ids}"
        await load.requests(5)
    return ids


async def wait_stream(mesh: Mesh, load: Load, limit: float = 15.0) -> None:
    """Until the client sidecar's snapshot stream is connected again."""
    deadline = time.monotonic() + limit
    while not (await mesh.client_config())["streamConnected"]:
        assert time.monotonic() < deadline, "client never reconnected"
        await load.requests(5)


async def test_sigkill_of_an_instance_fails_no_request_and_ejects_it(mesh: Mesh) -> None:
    async with steady_load(mesh) as load:
        await _sigkill_of_an_instance_fails_no_request_and_ejects_it(mesh, load)


async def _sigkill_of_an_instance_fails_no_request_and_ejects_it(mesh: Mesh, load: Load) -> None:
    victim = mesh.instances[0]
    victim_id = victim.ready["id"]
    victim.signal_group(signal.SIGKILL)
    t0, killed_at = time.monotonic(), load.by_instance["echo-1"]
    await wait_ids(mesh, load, lambda ids: victim_id not in ids)  # lease expired: out
    out_at = time.monotonic() - t0
    await load.requests(60)
    when = [f"sent {s - t0:+.2f}s, failed {f - t0:+.2f}s" for s, f in load.failure_times]
    assert load.failures == [], (load.failures, when, f"out of view at {out_at:.2f}s")
    assert load.by_instance["echo-1"] <= killed_at + 3  # only what was already on the wire
    print(
        f"\nafter SIGKILL: {load.ok} ok, 0 failed; ejections={await mesh.metric('gossamer_ejections_total')}"
    )


async def test_sigstop_failures_bounded_by_the_route_timeout_then_ejected(mesh: Mesh) -> None:
    async with steady_load(mesh) as load:
        await _sigstop_failures_bounded_by_the_route_timeout_then_ejected(mesh, load)


async def _sigstop_failures_bounded_by_the_route_timeout_then_ejected(
    mesh: Mesh, load: Load
) -> None:
    victim = mesh.instances[1]
    victim.signal_group(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        await wait_ids(mesh, load, lambda ids: victim.ready["id"] not in ids)
        ejected_at = time.monotonic()
        await load.requests(60)
        # Retries on 504 after the 300 ms backend timeout: a request fails only if every
        # attempt met the stalled instance, only while it is in the view, and never later
        # than the route's 3 s request timeout.
        for sent, failed in load.failure_times:
            assert stopped_at - 0.1 <= sent <= ejected_at, load.failures
            assert failed - sent <= 3.0 + 0.5
        total = load.ok + len(load.failures)
        print(f"\nSIGSTOP: {len(load.failures)} failed of {total}; out of view after "
              f"{ejected_at - stopped_at:.2f}s")  # fmt: skip
        assert len(load.failures) <= 0.1 * total
    finally:
        victim.signal_group(signal.SIGCONT)


async def test_control_plane_killed_under_load_then_proxies_resync(mesh: Mesh) -> None:
    async with steady_load(mesh) as load:
        await _control_plane_killed_under_load_then_proxies_resync(mesh, load)


async def _control_plane_killed_under_load_then_proxies_resync(mesh: Mesh, load: Load) -> None:
    version_before = (await mesh.client_config())["version"]
    port = mesh.control.port("port")
    mesh.control.signal_group(signal.SIGKILL)
    await mesh.control.proc.wait()
    await load.requests(150)  # longer than a lease: the data path does not care
    assert load.failures == [], load.failures
    assert len(await mesh.endpoint_ids()) == 3
    mesh.control = await mesh.procs.control(port=port, name="control-again")
    await wait_stream(mesh, load)  # back-off: 0.1 s doubling, capped at 5 s
    body = await mesh.apply(route({"v1": 1, "v2": 1}))  # waits for every proxy's ACK
    config = await mesh.client_config()
    assert config["version"] >= body["revision"] > version_before
    assert config["streamConnected"]
    await wait_ids(mesh, load, lambda ids: len(ids) == 3)
    applied = time.monotonic()
    await load.requests(60)
    assert set(load.sent_since(applied)) == {"echo-1", "echo-2"}  # the new route is in force
    assert load.failures == [], load.failures


async def test_config_change_under_load_drops_no_request_and_no_connection(mesh: Mesh) -> None:
    async with steady_load(mesh) as load:
        await _config_change_under_load_drops_no_request_and_no_connection(mesh, load)


async def _config_change_under_load_drops_no_request_and_no_connection(
    mesh: Mesh, load: Load
) -> None:
    for weights, only in (({"v1": 1}, "echo-1"), ({"v2": 1}, "echo-2"), ({"v3": 1}, "echo-3")):
        await mesh.apply(route(weights))  # returns once the client ACKed the new view
        applied = time.monotonic()
        await load.requests(40)
        assert set(load.sent_since(applied)) == {only}, load.sent_since(applied)
    assert load.failures == [], load.failures
    assert load.connections == load.workers  # not one client connection was dropped


async def test_draining_instance_loses_no_in_flight_request(mesh: Mesh, tmp_path: Path) -> None:
    await mesh.apply(route(backend_timeout="2s"))
    slow = Load(mesh.client.port("outbound"), "echo", path="/slow/300", workers=4)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(slow.run())
        await slow.until(lambda s: s.by_instance["echo-3"] >= 2)
        victim = mesh.instances[2]
        victim.proc.send_signal(signal.SIGTERM)  # the sidecar: it drains, then stops the app
        assert await victim.proc.wait() == 0
        await slow.requests(12)
        slow.stop()
    assert slow.failures == [], slow.failures
    assert "signal received; draining" in victim.log()
