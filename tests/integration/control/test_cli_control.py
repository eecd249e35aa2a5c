"""`gossamer control` as a real process: startup line, serving, per-stream memory, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

STREAMS = 200


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match
    return int(match.group(1))


async def test_control_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gossamer.cli.main",
        "control",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+) \(data: (\S+),", line)
        assert match, line
        base = f"http://127.0.0.1:{match.group(1)}"
        assert match.group(2) == str(tmp_path / "data")
        assert (tmp_path / "data" / "gossamer.db").exists()
        # Every API call needs a credential: the admin one made at first start (0600).
        admin_file = tmp_path / "data" / "credentials" / "admin.token"
        assert admin_file.stat().st_mode & 0o777 == 0o600
        auth = {"Authorization": f"Bearer {admin_file.read_text().strip()}"}
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), headers=auth
        ) as session:
            async with session.get(base + "/readyz") as resp:
                assert resp.status == 200
            for i in range(3):
                body = {"service": "reviews", "address": "127.0.0.1", "port": 9000 + i}
                async with session.post(
                    f"{base}/api/v1/proxies/reviews-{i}/register", json=body
                ) as resp:
                    assert resp.status == 200
            before = rss_kib(proc.pid)
            responses = []
            for i in range(STREAMS):
                url = f"{base}/api/v1/proxies/web-{i}/stream?protocol=1&service=web&watch=default/reviews"
                resp = await session.get(url)
                snapshot = json.loads(await resp.content.readline())
                assert len(snapshot["services"]["default/reviews"]["endpoints"]) == 3
                responses.append(resp)
            after = rss_kib(proc.pid)
            per_stream = (after - before) / STREAMS
            print(
                f"\ncontrol plane RSS {before} KiB -> {after} KiB with {STREAMS} streams: "
                f"{per_stream:.1f} KiB per subscriber"
            )
            assert per_stream < 512
            async with session.get(base + "/api/v1/proxies") as resp:
                listing = await resp.json()
                assert sum(1 for p in listing["items"] if p["connected"]) == STREAMS
            for resp in responses:
                resp.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_control_command_rejects_bad_flags(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gossamer.cli.main",
        "control",
        "--listen",
        "nonsense",
        "--data-dir",
        str(tmp_path),
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"HOST:PORT" in err
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gossamer.cli.main",
        "control",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(tmp_path),
        "--store",
        "ftp://x",
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"unknown scheme" in err
