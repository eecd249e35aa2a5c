"""`gossamer gateway` credentials, as the sidecar's: --token-file (0600 only), GOSSAMER_TOKEN,
and, with neither, the local admin credential obtains a token scoped to the gateway."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proxy"))

from helpers import GOSSAMER, Proc, Procs

GATEWAY = {"apiVersion": "gossamer.dev/v1", "kind": "Gateway", "metadata": {"name": "edge"},
           "spec": {"listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}]}}  # fmt: skip


@pytest.fixture
async def procs(tmp_path: Path) -> AsyncIterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        await p.close()


def gateway_argv(control: Proc, *extra: str) -> list[str]:
    return [*GOSSAMER, "gateway", "--name", "edge", "--address", "127.0.0.1",
            "--control", f"http://127.0.0.1:{control.port('port')}",
            "--listener-port", "http=0", "--stats-port", "0", "--access-log", "off",
            "--report-interval", "0", *extra]  # fmt: skip


async def test_token_file_env_token_and_the_local_admin_path(procs: Procs, tmp_path: Path) -> None:
    control = await procs.control()
    base = f"http://127.0.0.1:{control.port('port')}"
    async with httpx.AsyncClient(base_url=base, headers=control.auth_headers()) as http:
        assert (await http.post("/api/v1/apply", json={"documents": [GATEWAY]})).status_code == 200
        made = await http.post("/api/v1/tokens", json={"service": "edge"})
    token = made.json()["token"]
    token_file = tmp_path / "edge.token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    loose = tmp_path / "loose.token"
    loose.write_text(token)
    loose.chmod(0o644)
    nowhere = {"GOSSAMER_DATA_DIR": str(tmp_path / "elsewhere")}  # no admin credential there

    by_file = await procs.spawn(
        "gw-file", gateway_argv(control, "--token-file", str(token_file)), env=nowhere
    )
    by_env = await procs.spawn(
        "gw-env", gateway_argv(control), env={**nowhere, "GOSSAMER_TOKEN": token}
    )
    local = await procs.spawn("gw-local", gateway_argv(control))
    bad = await procs.spawn(
        "gw-loose", gateway_argv(control, "--token-file", str(loose)), env=nowhere
    )
    await asyncio.gather(
        *(p.wait_ready(b"gossamer-gateway ready") for p in (by_file, by_env, local))
    )
    for given in (by_file, by_env):
        assert "local admin credential" not in given.log()
    assert "used the local admin credential to obtain a token scoped to default/edge" in local.log()
    assert await asyncio.wait_for(bad.proc.wait(), 30) == 2
    assert f"token file has mode 0644; run chmod 600 {loose}" in bad.log()

    # Each holds a stream as the gateway edge (its token's scope), under its own id.
    async with httpx.AsyncClient(base_url=base, headers=control.auth_headers()) as http:
        listing = (await http.get("/api/v1/proxies")).json()
    streams = {item["id"]: item for item in listing["items"]}
    for p in (by_file, by_env, local):
        assert streams[p.ready["id"]]["service"] == "edge", streams
        assert streams[p.ready["id"]]["connected"] is True
