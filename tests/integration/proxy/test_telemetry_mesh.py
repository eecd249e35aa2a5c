"""Sidecar telemetry against a real control plane: the push reporter's numbers equal what
was sent, tap streams through the control plane, /metrics passes promtool, and a report
lost while the control plane is down is folded into the next one."""

from __future__ import annotations

import asyncio
import json
import shutil
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import Procs, free_port

from gossamer.control.server import ControlServer, running
from gossamer.proxy.control_client import Endpoint, HttpClient
from gossamer.proxy.telemetry.report import Reporter
from gossamer.proxy.telemetry.stats import Stats
from gossamer.store.sqlite import SQLiteStore

REPORT = ["--report-interval", "100ms"]


@pytest.fixture
async def control(tmp_path: Path) -> AsyncIterator[ControlServer]:
    store = SQLiteStore(tmp_path / "gossamer.db")
    server = ControlServer(store, port=0)
    try:
        async with running(server):
            yield server
    finally:
        await store.close()


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def until(http: aiohttp.ClientSession, url: str, check: Any, limit: float = 15.0) -> Any:
    """GET `url` until `check(body)`; reports arrive every 100 ms."""
    body = None
    for _ in range(int(limit / 0.05)):
        body = await get_json(http, url)
        if check(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url}: never satisfied; last answer {body}")


def requests_of(body: dict[str, Any], service: str) -> int:
    return sum(i["requests"] for i in body["items"] if i["service"] == service)


async def test_pushed_metrics_equal_the_requests_sent_and_tap_streams(
    tmp_path: Path, control: ControlServer
) -> None:
    procs = Procs(tmp_path)
    api = f"http://127.0.0.1:{control.port}/api/v1"
    try:
        echo = await procs.instance(
            control.port, "echo", "echo-1", labels="version=v1", extra=REPORT
        )
        client = await procs.instance(control.port, "client", "client-1", extra=REPORT)
        outbound = f"http://127.0.0.1:{client.port('outbound')}"
        sent = 37
        async with aiohttp.ClientSession() as http:
            for i in range(sent):
                async with http.get(f"{outbound}/items/{i % 3}", headers={"Host": "echo"}) as r:
                    assert r.status == 200
            out = await until(
                http,
                f"{api}/metrics/services?service=echo",
                lambda b: requests_of(b, "default/echo") >= sent,
            )
            (item,) = out["items"]
            assert item["requests"] == sent and item["successRate"] == 1.0
            assert set(item["subsets"]) == {"version=v1"} and item["p99"] is not None
            inbound = await until(
                http,
                f"{api}/metrics/services?service=echo&direction=inbound",
                lambda b: requests_of(b, "default/echo") >= sent,
            )
            assert requests_of(inbound, "default/echo") == sent
            edges = await get_json(http, f"{api}/metrics/edges?service=echo")
            (edge,) = edges["items"]
            assert (edge["src"], edge["dst"], edge["requests"]) == (
                "default/client",
                "default/echo",
                sent,
            )
            top = await get_json(http, f"{api}/metrics/top?service=echo")
            assert {i["path"]: i["requests"] for i in top["items"]} == {
                "/items/0": 13,
                "/items/1": 12,
                "/items/2": 12,
            }

            # Tap through the control plane while traffic flows.
            lines: list[dict[str, Any]] = []

            async def tap() -> None:
                url = f"{api}/tap?service=echo&path=/tap&limit=3"
                async with http.get(url) as resp:
                    assert resp.status == 200
                    while line := await resp.content.readline():
                        lines.append(json.loads(line))

            tapping = asyncio.create_task(tap())
            for i in range(2000):
                if tapping.done():
                    break
                headers = {"Host": "echo", "Authorization": "Bearer SECRET", "Cookie": "SECRET"}
                async with http.get(f"{outbound}/tap/{i}", headers=headers) as r:
                    assert r.status == 200
            await asyncio.wait_for(tapping, 10)
            assert len(lines) == 3
            for line in lines:
                assert line["proxy"] == echo.ready["id"] and line["direction"] == "inbound"
                assert line["path"].startswith("/tap/") and line["status"] == 200
                assert "SECRET" not in json.dumps(line)

            metrics_url = f"http://127.0.0.1:{client.port('stats')}/metrics"
            async with http.get(metrics_url) as resp:
                text = await resp.read()
        assert b"gossamer_snapshot_version " in text
        assert b"gossamer_control_plane_connected 1\n" in text
        if shutil.which("promtool"):
            check = await asyncio.create_subprocess_exec(
                "promtool", "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
            )
            output, _ = await asyncio.wait_for(check.communicate(text), 30)
            assert check.returncode == 0 and not output, output
    finally:
        await procs.close()


async def test_a_report_lost_while_the_control_plane_is_down_is_folded_into_the_next(
    control: ControlServer,
) -> None:
    stats = Stats("default/client")
    key = ("outbound", "default/client", "default/echo", "", -1, "", False)
    for _ in range(5):
        stats._count(key, 200, "", 0.003)
    down = HttpClient(Endpoint.parse(f"http://127.0.0.1:{free_port()}"))
    reporter = Reporter(stats, down, "client-1")
    assert not await reporter.report_once()
    pending = reporter.pending
    for _ in range(3):
        stats._count(key, 503, "", 0.2)
    assert not await reporter.report_once()
    assert reporter.pending is pending  # still the one report: nothing piles up
    reporter.http = HttpClient(Endpoint.parse(f"http://127.0.0.1:{control.port}"))
    assert await reporter.report_once()
    assert reporter.pending is None and reporter.delivered == 2
    async with aiohttp.ClientSession() as http:
        body = await get_json(
            http, f"http://127.0.0.1:{control.port}/api/v1/metrics/services?service=echo"
        )
    (item,) = body["items"]
    assert item["requests"] == 8 and abs(item["successRate"] - 5 / 8) < 1e-9


async def test_a_stopping_reporter_sends_what_it_has_left(control: ControlServer) -> None:
    stats = Stats("default/client")
    key = ("outbound", "default/client", "default/echo", "", -1, "", False)
    http = HttpClient(Endpoint.parse(f"http://127.0.0.1:{control.port}"))
    reporter = Reporter(stats, http, "client-2", interval=3600.0)
    task = asyncio.create_task(reporter.run())
    for _ in range(4):
        stats._count(key, 200, "", 0.001)
    await asyncio.sleep(0)  # the reporter is waiting for its (hour-long) interval
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reporter.delivered == 1
    async with aiohttp.ClientSession() as session:
        body = await get_json(
            session, f"http://127.0.0.1:{control.port}/api/v1/metrics/services?service=echo"
        )
    assert body["items"][0]["requests"] == 4
