"""Sticky sessions and weighted splits with real processes: a control plane, reviews v1 and
v2 (echo apps behind `gossamer run`) and two client sidecars, an HTTPRoute applied through
the API (compiled by the control plane, pushed, ACKed) and traffic through both clients."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httptools
import httpx
import pytest
from helpers import Procs

USERS = 24
SPLIT_REQUESTS = 1000


def route(v1: int, v2: int) -> dict[str, Any]:
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": "reviews"}],
            "rules": [
                {
                    "sessionPersistence": {"type": "Cookie", "sessionName": "gsm"},
                    "backendRefs": [
                        {"name": "reviews", "labels": {"version": "v1"}, "weight": v1},
                        {"name": "reviews", "labels": {"version": "v2"}, "weight": v2},
                    ],
                }
            ],
        },
    }


class Response:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        self.done = True


class KeepAlive:
    """One keep-alive connection to a client sidecar's outbound port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, cookie: bytes = b"") -> tuple[int, str, Response]:
        if self.conn is None:
            self.conn = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.conn
        extra = b"cookie: " + cookie + b"\r\n" if cookie else b""
        writer.write(b"GET /r HTTP/1.1\r\nhost: reviews\r\n" + extra + b"\r\n")
        resp = Response()
        parser = httptools.HttpResponseParser(resp)
        async with asyncio.timeout(10):
            while not resp.done:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("closed mid-response")
                parser.feed_data(data)
        status = parser.get_status_code()
        instance = json.loads(resp.body)["instance"] if status == 200 else ""
        return status, instance, resp

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[tuple[str, list[int], dict[str, str]]]:
    procs = Procs(tmp_path)
    try:
        control = await procs.control()
        port = control.port("port")
        await asyncio.gather(
            procs.instance(port, "reviews", "reviews-v1", labels="version=v1"),
            procs.instance(port, "reviews", "reviews-v2", labels="version=v2"),
        )
        clients = await asyncio.gather(
            procs.instance(port, "client", "client-a", extra=["--upstream", "reviews=0"]),
            procs.instance(port, "client", "client-b", extra=["--upstream", "reviews=0"]),
        )
        token = tmp_path / "control" / "credentials" / "admin.token"
        auth = {"Authorization": f"Bearer {token.read_text().strip()}"} if token.exists() else {}
        yield f"http://127.0.0.1:{port}", [c.port("outbound") for c in clients], auth
    finally:
        await procs.close()


async def apply(base: str, auth: dict[str, str], doc: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=auth) as http:
        resp = await http.post("/api/v1/apply", json={"documents": [doc], "waitSeconds": 15})
        assert resp.status_code == 200, resp.text
        assert resp.json()["sync"]["complete"], resp.json()


async def test_sticky_cookie_holds_across_two_client_sidecars_and_widening_only_moves_to_v2(
    mesh: tuple[str, list[int], dict[str, str]],
) -> None:
    base, ports, auth = mesh
    await apply(base, auth, route(50, 50))
    a, b = KeepAlive(ports[0]), KeepAlive(ports[1])
    try:
        # New users get their cookie from whichever sidecar they hit first.
        cookies = []
        for i in range(USERS):
            status, _, resp = await (a if i % 2 else b).get()
            assert status == 200
            set_cookie = dict(resp.headers)[b"set-cookie"]
            cookies.append(set_cookie.split(b";", 1)[0])
        assigned: dict[bytes, str] = {}
        for cookie in cookies:
            seen = set()
            for client in (a, b, a, b, a, b):
                status, instance, resp = await client.get(b"theme=dark; " + cookie)
                assert status == 200 and b"set-cookie" not in dict(resp.headers)
                seen.add(instance)
            assert len(seen) == 1, (cookie, seen)  # one variant on both sidecars
            assigned[cookie] = seen.pop()
        assert set(assigned.values()) == {"reviews-v1", "reviews-v2"}
        # Widen v2: users only move from v1 to v2, never back.
        await apply(base, auth, route(20, 80))
        for cookie, before in assigned.items():
            _, after, _ = await b.get(cookie)
            if before == "reviews-v2":
                assert after == "reviews-v2", cookie
    finally:
        a.close()
        b.close()


async def test_weighted_split_holds_over_many_requests(
    mesh: tuple[str, list[int], dict[str, str]],
) -> None:
    base, ports, auth = mesh
    await apply(base, auth, route(80, 20))
    clients = [KeepAlive(port) for port in ports for _ in range(2)]

    async def worker(client: KeepAlive, n: int, counts: Counter[str]) -> None:
        for _ in range(n):
            status, instance, _ = await client.get()  # no cookie: a fresh random point
            assert status == 200
            counts[instance] += 1

    counts: Counter[str] = Counter()
    try:
        async with asyncio.TaskGroup() as tg:
            for client in clients:
                tg.create_task(worker(client, SPLIT_REQUESTS // len(clients), counts))
    finally:
        for client in clients:
            client.close()
    total = sum(counts.values())
    expected = {"reviews-v1": total * 0.8, "reviews-v2": total * 0.2}
    chi2 = sum((counts[k] - e) ** 2 / e for k, e in expected.items())
    assert total == SPLIT_REQUESTS
    assert chi2 < 10.83, (counts, chi2)  # 1 degree of freedom, p = 0.001
