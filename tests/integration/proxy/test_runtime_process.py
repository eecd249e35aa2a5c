"""`gossamer proxy` and `gossamer run` as real processes: ready line, listeners, lean imports,
idle RSS, clean shutdown, the app's exit code, and the app dying with its sidecar."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from helpers import GOSSAMER, Proc, Procs, free_port, http_get

# The mesh CA is on (every `gossamer control`): the certificate work runs in a short-lived
# child (proxy/identity_worker.py), so cryptography never loads in the sidecar itself.
FORBIDDEN = ("pydantic", "typer", "rich", "aiohttp", "httpx", "yaml", "cryptography")


@pytest.fixture
async def procs(tmp_path: Path) -> AsyncIterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        await p.close()


async def instance_status(control: Proc, name: str) -> int:
    async with httpx.AsyncClient(headers=control.auth_headers()) as http:
        url = f"http://127.0.0.1:{control.port('port')}/api/v1/namespaces/default/instances/{name}"
        return (await http.get(url)).status_code


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def only_child(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


async def wait_pid_exit(pid: int, limit: float = 10.0) -> None:
    """Wait for a process that is not our child to exit (pidfd: an event, not a poll)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # already gone
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(fd, gone.set_result, None)
    try:
        async with asyncio.timeout(limit):
            await gone
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def test_importing_the_sidecar_loads_nothing_heavy() -> None:
    code = (
        "import sys; import gossamer.cli.main, gossamer.proxy.cli, gossamer.proxy.runtime, "
        "gossamer.proxy.dataplane, gossamer.proxy.control_client, gossamer.proxy.admin; "
        f"print([m for m in {FORBIDDEN!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_proxy_process_is_lean_ready_and_shuts_down_cleanly(
    procs: Procs, tmp_path: Path
) -> None:
    control = await procs.control()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    app_server = await asyncio.start_server(app, "127.0.0.1", 0)
    app_port = app_server.sockets[0].getsockname()[1]
    proxy = await procs.spawn(
        "proxy",
        [sys.executable, "-X", "importtime", *GOSSAMER[1:], "proxy", "--service", "ratings",
         "--app-port", str(app_port), "--labels", "version=v3", "--id", "ratings-lean",
         "--control", f"http://127.0.0.1:{control.port('port')}", "--lease", "2s",
         "--outbound-port", "0", "--inbound-port", "0", "--stats-port", "0",
         "--admin-port", "0", "--upstream", "reviews=0"],
    )  # fmt: skip
    ready = await proxy.wait_ready(b"gossamer-proxy ready")
    assert ready["id"] == "ratings-lean" and int(ready["upstream.default/reviews"]) > 0
    imported = proxy.log_path.read_text()  # all of it: cryptography's imports are many
    loaded = [m for m in FORBIDDEN if f"| {m}\n" in imported or f"|   {m}\n" in imported]
    assert "gossamer.proxy.runtime" in imported and loaded == []
    kib = rss_kib(proxy.pid)
    print(f"\nidle RSS of `gossamer proxy`: {kib / 1024:.1f} MiB")
    assert kib < 64 * 1024

    async with httpx.AsyncClient() as http:
        stats = f"http://127.0.0.1:{proxy.port('stats')}"
        admin = f"http://127.0.0.1:{proxy.port('admin')}"
        assert (await http.get(f"{stats}/ready")).status_code == 200
        assert (await http.get(f"{stats}/live")).text == "live\n"
        metrics = await http.get(f"{stats}/metrics")
        assert metrics.status_code == 200 and b"# TYPE" in metrics.content
        config = (await http.get(f"{admin}/config")).json()
        assert config["registered"] and config["service"] == "default/ratings"
        assert config["snapshot"]["version"] == config["version"] >= 1
        assert "default/reviews" in config["snapshot"]["services"]
        assert (await http.post(f"{admin}/config")).status_code == 405
        assert (await http.get(f"{stats}/config")).status_code == 404  # admin only
    assert await instance_status(control, "ratings-lean") == 200

    proxy.proc.send_signal(signal.SIGTERM)
    assert await proxy.proc.wait() == 0
    assert await instance_status(control, "ratings-lean") == 404  # deregistered at once
    app_server.close()


APP_THAT_EXITS = """
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen()
print(os.environ["HTTP_PROXY"], os.environ["no_proxy"], file=sys.stderr, flush=True)
while True:
    conn, _ = s.accept()
    if conn.recv(16) == b"exit":
        sys.exit(3)
    conn.close()
"""


async def test_run_exits_with_the_apps_code_and_deregisters(procs: Procs) -> None:
    control = await procs.control()
    app_port = free_port()
    run = await procs.spawn(
        "run",
        [*GOSSAMER, "run", "--service", "worker", "--port", str(app_port), "--id", "worker-x",
         "--control", f"http://127.0.0.1:{control.port('port')}", "--outbound-port", "0",
         "--inbound-port", "0", "--stats-port", "0", "--admin-port", "0",
         "--", sys.executable, "-c", APP_THAT_EXITS],
    )  # fmt: skip
    ready = await run.wait_ready(b"gossamer-proxy ready")
    assert f"http://127.0.0.1:{ready['outbound']} localhost,127.0.0.1" in run.log()
    assert await instance_status(control, "worker-x") == 200
    _, writer = await asyncio.open_connection("127.0.0.1", app_port)
    writer.write(b"exit")
    await writer.drain()
    writer.close()
    assert await run.proc.wait() == 3
    assert await instance_status(control, "worker-x") == 404


async def test_app_dies_with_a_killed_sidecar_and_sigterm_stops_both(procs: Procs) -> None:
    control = await procs.control()
    inst = await procs.instance(control.port("port"), "echo", "echo-k")
    app_pid = only_child(inst.pid)
    os.kill(inst.pid, signal.SIGKILL)  # the sidecar alone, as an OOM killer would
    await wait_pid_exit(app_pid)

    other = await procs.instance(control.port("port"), "echo", "echo-t")
    app_pid = only_child(other.pid)
    os.kill(other.pid, signal.SIGTERM)
    assert await other.proc.wait() == 0
    await wait_pid_exit(app_pid)  # stopped by its sidecar after the drain
    assert "signal received; draining" in other.log()


async def test_on_demand_discovery_through_a_sidecar_that_declared_nothing(procs: Procs) -> None:
    control = await procs.control()
    await procs.instance(control.port("port"), "echo", "echo-1")
    client = await procs.instance(control.port("port"), "client", "client-1")
    port = client.port("outbound")
    status, _, body, conn = await http_get(port, "echo", "/first")  # watched on first use
    assert status == 200 and b'"instance": "echo-1"' in body
    status, headers, _, _ = await http_get(port, "nosuch.default.svc", "/", conn)
    assert (status, headers.get(b"x-gossamer-reason")) == (404, b"unknown_service")
    async with httpx.AsyncClient() as http:
        config = (await http.get(f"http://127.0.0.1:{client.port('admin')}/config")).json()
    assert {"default/echo", "default/nosuch"} <= set(config["watching"])
