"""A control plane serving TLS with its mesh-CA certificate, and a sidecar whose token
carries the CA fingerprint: first contact is pinned (kubeadm-style), the token is only sent
to a verified control plane, and a token naming another CA gets nowhere."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from helpers import GOSSAMER, Proc, Procs, free_port

READY = re.compile(rb"listening on https://127\.0\.0\.1:(\d+) ")


@pytest.fixture
async def procs(tmp_path: Path) -> AsyncIterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        await p.close()


async def control_tls(procs: Procs) -> tuple[Proc, int]:
    argv = [*GOSSAMER, "control", "--listen", "127.0.0.1:0", "--tls",
            "--data-dir", str(procs.tmp / "control")]  # fmt: skip
    proc = await procs.spawn("control", argv)
    assert proc.proc.stdout is not None
    line = await asyncio.wait_for(proc.proc.stdout.readline(), 30)
    match = READY.search(line)
    assert match, line
    return proc, int(match.group(1))


async def sidecar(procs: Procs, port: int, token: str, name: str) -> Proc:
    argv = [*GOSSAMER, "run", "--service", "echo", "--port", str(free_port()),
            "--control", f"https://127.0.0.1:{port}", "--lease", "2s",
            "--outbound-port", "0", "--inbound-port", "0", "--stats-port", "0",
            "--admin-port", "0", "--", sys.executable, "-m", "gossamer.demo.apps", "echo"]  # fmt: skip
    # No local admin credential to fall back on: only the token (and its fingerprint).
    env = {"GOSSAMER_TOKEN": token, "GOSSAMER_DATA_DIR": str(procs.tmp / "elsewhere")}
    return await procs.spawn(name, argv, env=env)


async def test_sidecar_pins_the_control_plane_by_the_tokens_fingerprint(procs: Procs) -> None:
    control, port = await control_tls(procs)
    async with httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{port}", verify=False, headers=control.auth_headers()
    ) as http:
        # Plain http to the TLS port gets nowhere; the bundle is public.
        answer = (await http.post("/api/v1/tokens", json={"service": "echo"})).json()
        bundle = (await http.get("/api/v1/trust-bundle", headers={"Authorization": ""})).json()
    token = answer["token"]
    assert token.endswith(bundle["fingerprint"])
    good = await sidecar(procs, port, token, "echo-good")
    await good.wait_ready(b"gossamer-proxy ready")
    assert "control plane pinned to CA" in good.log()
    assert "spiffe://cluster.local/ns/gossamer-system/sa/control" in good.log()

    wrong = token.split("#")[0] + "#sha256:" + "ab" * 32
    bad = await sidecar(procs, port, wrong, "echo-bad")
    async with asyncio.timeout(20):
        # Another process's log file is the only signal there is: look every 100 ms.
        while "not the one the token names" not in bad.log():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert "ready" not in bad.log()
