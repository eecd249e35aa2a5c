"""The certificate lifecycle on real processes, under constant load through mTLS:
short-lived SVIDs renewed several times in a row, a root rotation driven by
`gossamer ca rotate`, and the CA going away (serve until expiry, then refuse; recover
within seconds of its return). No request may fail except while the CA is away past expiry."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import CONTROL_READY, GOSSAMER, Load, Proc, Procs

CERT_TTL = "3s"  # SVIDs live 3 s (+ up to 60 s back-dating for skew, capped at the TTL)


async def start_control(procs: Procs, port: int = 0, name: str = "control") -> Proc:
    argv = [*GOSSAMER, "control", "--listen", f"127.0.0.1:{port}",
            "--data-dir", str(procs.tmp / "control"), "--cert-ttl", CERT_TTL]  # fmt: skip
    proc = await procs.spawn(name, argv)
    await proc.wait_ready(CONTROL_READY)
    return proc


def renewals(proc: Proc) -> int:
    return proc.log_path.read_text(errors="replace").count("certificate renewed")


async def identities(control: Proc) -> dict[str, Any]:
    url = f"http://127.0.0.1:{control.port('port')}/api/v1/identities"
    async with httpx.AsyncClient(headers=control.auth_headers()) as http:
        return dict((await http.get(url)).json())


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[tuple[Procs, Proc, Proc, Proc]]:
    procs = Procs(tmp_path)
    try:
        control = await start_control(procs)
        port = control.port("port")
        echo = await procs.instance(port, "echo", "echo-1")
        client = await procs.instance(port, "client", "client-1", extra=["--upstream", "echo=0"])
        yield procs, control, echo, client
    finally:
        await procs.close()


async def test_renewals_in_a_row_and_a_root_rotation_fail_no_request(
    mesh: tuple[Procs, Proc, Proc, Proc],
) -> None:
    procs, control, echo, client = mesh
    load = Load(client.port("outbound"), "echo", workers=3)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(load.run())
        await load.requests(20)
        # Several renewals on both sides while traffic flows (each ~1-2 s with 3 s certs).
        await load.until(lambda s: renewals(echo) >= 3 and renewals(client) >= 3, limit=30)
        # Rotate the root: the CLI advances each step only once every proxy caught up.
        rotate = await asyncio.create_subprocess_exec(
            *GOSSAMER, "ca", "rotate", "--wait", "30",
            "--control", f"http://127.0.0.1:{control.port('port')}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "GOSSAMER_DATA_DIR": str(procs.tmp / "control")},
        )  # fmt: skip
        out, _ = await rotate.communicate()
        assert rotate.returncode == 0, out.decode()
        await load.requests(50)
        load.stop()
    assert load.failures == [], load.failures[:5]
    assert load.ok > 100
    listing = await identities(control)
    items = [i for i in listing["items"] if i["connected"]]
    assert {i["spiffeId"] for i in items} == {
        "spiffe://cluster.local/ns/default/sa/echo",
        "spiffe://cluster.local/ns/default/sa/client",
    }
    assert all(i["bundle"] == listing["bundleHash"] for i in items)
    ca_dir = procs.tmp / "control" / "ca"
    state = json.loads((ca_dir / "state.json").read_text())
    assert len(state["trusted"]) == 1 and state["signing"] == state["trusted"][0]
    assert len(list(ca_dir.glob("*.key.pem"))) == 1  # the old root's key is gone


async def test_ca_down_serve_until_expiry_then_refuse_and_recover(
    mesh: tuple[Procs, Proc, Proc, Proc],
) -> None:
    procs, control, echo, client = mesh
    port = control.port("port")
    load = Load(client.port("outbound"), "echo", workers=2)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(load.run())
        await load.requests(20)
        await control.stop(grace=0.1)  # the CA is gone
        ok_before = load.ok
        await load.requests(20)
        assert load.ok > ok_before  # still serving on the certificates held
        # Then the certificates expire and both sidecars refuse (fail closed).
        await load.until(lambda s: len(s.failures) >= 5, limit=15)
        assert any("503" in f or "502" in f for f in load.failures)
        # The CA comes back on the same port: traffic recovers within seconds.
        await start_control(procs, port, name="control-again")
        returned = time.monotonic()
        await load.until(lambda s: bool(s.sent_since(returned)), limit=15)
        recovered = min(sent for sent, _ in load.answered if sent >= returned) - returned
        await load.requests(20)
        load.stop()
    print(f"\ntraffic recovered {recovered:.2f}s after the control plane was back")
    assert recovered < 10.0
    assert load.failures[-1:] != [] and "503" in load.failures[-1]  # refused while expired
    assert "refusing mTLS" in client.log() or "refusing mTLS" in echo.log()
