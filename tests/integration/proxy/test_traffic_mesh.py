"""Issue 6 under real sidecars and traffic: a control plane, reviews v1/v2/v3 (echo apps
behind `gossamer run`) and three client sidecars. Weights hold (chi-square over 10,000+
requests), sticky assignment holds for every user on every client sidecar, a weight change
and a blue-green switch (`gossamer split`) under constant load fail no request, and a
backendRef naming nothing valid answers 500 for its share while an empty subset answers 503."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httptools
import httpx
import pytest
import pytest_asyncio
from helpers import GOSSAMER, Load, Procs
from test_filters_mesh import Response

# One mesh (5 sidecars and a control plane) for the module: each test applies its own route.
pytestmark = pytest.mark.asyncio(loop_scope="module")
SPLIT_REQUESTS = 10_080  # at least 10,000, a multiple of CONNECTIONS
CONNECTIONS = 48  # keep-alive connections spread over the three client sidecars
USERS = 200
SWITCH_REQUESTS = 200  # per client sidecar after each switch
# Chi-square critical values at p = 0.001 (a correct split fails 1 run in 1000).
CHI2_CRITICAL = {1: 10.828, 2: 13.816}


class KeepAlive:
    """One keep-alive connection to a client sidecar's outbound port, GET host reviews."""

    def __init__(self, port: int, path: bytes = b"/r") -> None:
        self.port = port
        self.path = path
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, header: bytes = b"") -> tuple[int, str, Response]:
        if self.conn is None:
            self.conn = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.conn
        extra = header + b"\r\n" if header else b""
        writer.write(b"GET %s HTTP/1.1\r\nhost: reviews\r\n%s\r\n" % (self.path, extra))
        resp = Response()
        parser = httptools.HttpResponseParser(resp)
        async with asyncio.timeout(10):
            while not resp.done:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("closed mid-response")
                parser.feed_data(data)
        status = parser.get_status_code()
        if (b"connection", b"close") in resp.headers:
            self.close()  # a locally generated error may close the connection
        instance = json.loads(resp.body)["instance"] if status == 200 else ""
        return status, instance, resp

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


@dataclass
class Mesh:
    base: str
    auth: dict[str, str]
    ports: list[int]  # outbound ports of the three client sidecars
    env: dict[str, str]  # for the CLI: control URL and data dir (admin credential)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    tmp_path = tmp_path_factory.mktemp("traffic")
    procs = Procs(tmp_path)
    try:
        control = await procs.control()
        port = control.port("port")
        await asyncio.gather(
            *(
                procs.instance(port, "reviews", f"reviews-{v}", labels=f"version={v}")
                for v in ("v1", "v2", "v3")
            )
        )
        clients = await asyncio.gather(
            *(
                procs.instance(port, "client", f"client-{c}", extra=["--upstream", "reviews=0"])
                for c in "abc"
            )
        )
        token = tmp_path / "control" / "credentials" / "admin.token"
        auth = {"Authorization": f"Bearer {token.read_text().strip()}"} if token.exists() else {}
        base = f"http://127.0.0.1:{port}"
        env = {"GOSSAMER_CONTROL": base, "GOSSAMER_DATA_DIR": str(tmp_path / "control")}
        yield Mesh(base, auth, [c.port("outbound") for c in clients], env)
    finally:
        await procs.close()


def route(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"parentRefs": [{"name": "reviews"}], "rules": list(rules)},
    }


def subset(version: str, weight: int) -> dict[str, Any]:
    return {"name": "reviews", "labels": {"version": version}, "weight": weight}


async def apply(mesh: Mesh, doc: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=mesh.base, timeout=30, headers=mesh.auth) as http:
        resp = await http.post("/api/v1/apply", json={"documents": [doc], "waitSeconds": 15})
        assert resp.status_code == 200, resp.text
        assert resp.json()["sync"]["complete"], resp.json()


async def cli(mesh: Mesh, *args: str, code: int = 0) -> str:
    proc = await asyncio.create_subprocess_exec(
        *GOSSAMER,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **mesh.env},
    )
    out, err = await proc.communicate()
    assert proc.returncode == code, (args, out, err)
    return out.decode()


def chi_square(counts: Counter[str], weights: dict[str, int]) -> float:
    total = sum(counts.values())
    whole = sum(weights.values())
    return sum(
        (counts[k] - total * w / whole) ** 2 / (total * w / whole) for k, w in weights.items()
    )


async def test_weights_hold_within_chi_square_over_ten_thousand_requests(mesh: Mesh) -> None:
    # Three backends: the rendezvous-hashing path of choose_backend, not only the two-way one.
    weights = {"reviews-v1": 50, "reviews-v2": 30, "reviews-v3": 20}
    await apply(
        mesh, route({"backendRefs": [subset("v1", 50), subset("v2", 30), subset("v3", 20)]})
    )
    clients = [KeepAlive(mesh.ports[i % len(mesh.ports)]) for i in range(CONNECTIONS)]
    counts: Counter[str] = Counter()
    statuses: Counter[int] = Counter()

    async def worker(client: KeepAlive, n: int) -> None:
        for _ in range(n):
            status, instance, _ = await client.get()  # no sticky key: a fresh random point
            statuses[status] += 1
            counts[instance] += 1

    started = time.monotonic()
    try:
        async with asyncio.TaskGroup() as tg:
            for client in clients:
                tg.create_task(worker(client, SPLIT_REQUESTS // CONNECTIONS))
    finally:
        for client in clients:
            client.close()
    elapsed = time.monotonic() - started
    assert statuses == {200: SPLIT_REQUESTS}
    chi2 = chi_square(counts, weights)
    print(f"{SPLIT_REQUESTS} requests in {elapsed:.2f}s: {dict(counts)} chi2={chi2:.2f}")
    assert chi2 < CHI2_CRITICAL[len(weights) - 1], (counts, chi2)


async def test_sticky_assignment_holds_for_every_user_across_three_client_sidecars(
    mesh: Mesh,
) -> None:
    sticky = {"type": "Header", "sessionName": "x-user-id"}
    await apply(
        mesh,
        route({"sessionPersistence": sticky, "backendRefs": [subset("v1", 50), subset("v2", 50)]}),
    )
    conns = [KeepAlive(port) for port in mesh.ports for _ in range(4)]

    async def variants(user: int, client: KeepAlive) -> set[str]:
        seen = set()
        for _ in range(2):
            status, instance, _ = await client.get(header=b"x-user-id: %d" % user)
            assert status == 200
            seen.add(instance)
        return seen

    try:
        assigned: dict[int, str] = {}
        for start in range(0, USERS, len(conns) // 3):
            batch = range(start, min(start + len(conns) // 3, USERS))
            # Every user of the batch on every client sidecar, concurrently.
            jobs = {
                (user, i): asyncio.ensure_future(variants(user, conns[(user - start) * 3 + i]))
                for user in batch
                for i in range(3)
            }
            await asyncio.gather(*jobs.values())
            for user in batch:
                seen = set().union(*(jobs[(user, i)].result() for i in range(3)))
                assert len(seen) == 1, (user, seen)  # one variant on all three sidecars
                assigned[user] = seen.pop()
    finally:
        for conn in conns:
            conn.close()
    shares = Counter(assigned.values())
    assert set(shares) == {"reviews-v1", "reviews-v2"}
    # Users, not requests, are split 50/50: a loose bound (p < 0.001) on the hash's spread.
    assert chi_square(shares, {"reviews-v1": 1, "reviews-v2": 1}) < CHI2_CRITICAL[1], shares


async def test_weight_change_and_blue_green_under_constant_load_fail_no_request(
    mesh: Mesh,
) -> None:
    await apply(mesh, route({"backendRefs": [subset("v1", 90), subset("v2", 10)]}))
    loads = [Load(port, "reviews", "/r", workers=4) for port in mesh.ports]
    async with asyncio.TaskGroup() as tg:
        for load in loads:
            tg.create_task(load.run())
        try:
            await asyncio.gather(*(load.requests(200) for load in loads))

            async def switch(*weights: str, only: set[str] | None = None) -> None:
                await cli(mesh, "split", "reviews", *weights, "--wait")
                at = time.monotonic()
                # Requests sent after every sidecar ACKed see the new weights.
                await asyncio.gather(*(load.requests(SWITCH_REQUESTS) for load in loads))
                seen = set().union(*(load.sent_since(at) for load in loads))
                if only is not None:
                    assert seen == only, (weights, seen)

            await switch("v1=50", "v2=50", only={"reviews-v1", "reviews-v2"})
            await switch("v2=100", only={"reviews-v2"})  # blue-green
            await switch("v1=100", only={"reviews-v1"})  # and back
            await switch("v2=100", only={"reviews-v2"})
        finally:
            for load in loads:
                load.stop()
    total = sum(load.ok + len(load.failures) for load in loads)
    failures = [f for load in loads for f in load.failures]
    print(f"{total} requests during 4 switches, {len(failures)} failed")
    assert total >= 3 * (200 + 4 * SWITCH_REQUESTS)
    assert failures == []
    assert all(load.connections == load.workers for load in loads)  # no connection dropped


async def test_invalid_backend_share_is_500_and_an_empty_subset_is_503(mesh: Mesh) -> None:
    def on(path: str, *refs: dict[str, Any]) -> dict[str, Any]:
        return {
            "matches": [{"path": {"type": "PathPrefix", "value": path}}],
            "backendRefs": list(refs),
        }

    deployment = {"kind": "Deployment", "name": "reviews", "weight": 1}
    await apply(
        mesh,
        route(
            on("/kind", deployment),
            on("/ghost", {"name": "ghost", "weight": 1}),
            on("/empty", subset("v9", 1)),
            on("/half", subset("v1", 1), deployment),
        ),
    )
    for path, status, reason in [
        ("/kind", 500, b"invalid_backend"),
        ("/ghost", 500, b"invalid_backend"),
        ("/empty", 503, b"no_healthy_endpoint"),
    ]:
        conn = KeepAlive(mesh.ports[0], path=path.encode())
        try:
            got, _, resp = await conn.get()
        finally:
            conn.close()
        assert (got, dict(resp.headers).get(b"x-gossamer-reason")) == (status, reason), path
        # `gossamer explain` tells the operator the same, and why.
        told = await cli(mesh, "explain", "route", "reviews", "GET", path, code=1)
        assert f"{status} {reason.decode()}" in told, told
    # The invalid ref keeps its share of the traffic, answered 500; the rest is served.
    conn = KeepAlive(mesh.ports[1], path=b"/half")
    outcomes: Counter[int] = Counter()
    try:
        for _ in range(400):
            status, _, _ = await conn.get()
            outcomes[status] += 1
    finally:
        conn.close()
    assert set(outcomes) == {200, 500}
    assert (
        chi_square(Counter({str(k): v for k, v in outcomes.items()}), {"200": 1, "500": 1})
        < CHI2_CRITICAL[1]
    ), outcomes
