"""Longer churn under load (run with `make soak`): instances die and are replaced for a
minute while the client keeps sending; no idempotent request may fail."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from test_resilience_mesh import LEASE, Mesh, mesh, route, steady_load, wait_ids

__all__ = ["mesh"]  # the fixture, re-used

SOAK_SECONDS = 60.0


@pytest.mark.slow
async def test_churn_of_instances_under_load(mesh: Mesh, tmp_path: Path) -> None:
    port = mesh.control.port("port")
    async with steady_load(mesh) as load:
        end, generation = time.monotonic() + SOAK_SECONDS, 0
        while time.monotonic() < end:
            generation += 1
            victim = mesh.instances.pop(0)
            victim.signal_group(signal.SIGKILL)
            name = f"echo-{victim.name.split('-')[1]}"
            fresh = await mesh.procs.instance(
                port, "echo", name, labels=f"version=v{name[-1]}", lease=LEASE
            )
            mesh.instances.append(fresh)
            await wait_ids(mesh, load, lambda ids, v=victim.ready["id"]: v not in ids)
            await load.requests(50)
        await mesh.apply(route())
    print(f"\nchurn: {generation} kills, {load.ok} ok, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:20]
