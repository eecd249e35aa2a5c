"""The DataPlane end to end: outbound routing on a real snapshot, inbound, drain."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvloop
from test_framing_kit import connect, keepalive_ok, ok_response, read_request

from gossamer.proxy.dataplane import DataPlane
from gossamer.proxy.snapshot import Snapshot

# pytest-asyncio deprecates this override in favour of a loop-factory hook, which would
# apply to every test in the directory; the override keeps uvloop to these modules.
pytestmark = pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy"')


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """The sidecar runs on uvloop; so do these tests."""
    return uvloop.EventLoopPolicy()


RID = b"x-request-id: r1\r\n"


def entry(
    name: str, ports: list[int], routes: list[Any] | None = None, **policy: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "default",
        "exists": True,
        "protocol": "HTTP",
        "endpoints": [
            {
                "id": f"{name}-{i}",
                "address": "127.0.0.1",
                "port": port,
                "labels": {"version": f"v{i + 1}"},
            }
            for i, port in enumerate(ports)
        ],
        "routes": routes or [],
        "policy": policy,
    }


def route(
    backends: list[dict[str, Any]],
    match: dict[str, Any] | None = None,
    retry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "route": "default/r",
        "rule": 0,
        "match": match or {"path": {"type": "PathPrefix", "value": "/"}},
        "backends": backends,
        "filters": [],
        "timeouts": {"request": None, "backendRequest": None},
        "retry": retry,
    }


def install(plane: DataPlane, services: dict[str, Any], policy: str = "ALLOW_ANY") -> None:
    plane.holder.update(
        Snapshot.from_wire(
            {
                "type": "snapshot",
                "protocol": 1,
                "version": 1,
                "mesh": {"outboundTrafficPolicy": policy},
                "services": services,
            }
        )
    )


def reason(response: bytes) -> bytes:
    for line in response.split(b"\r\n"):
        if line.startswith(b"x-gossamer-reason: "):
            return line.split(b": ", 1)[1]
    return b""


async def get(port: int, request: bytes) -> bytes:
    client = await connect(port)
    await client.send(request)
    response = await client.read_response()
    client.close()
    return response


async def test_outbound_proxy_form_and_host_header_reach_the_service(dataplane, upstreams):
    upstream = await upstreams(keepalive_ok)
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port])})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    assert (await get(port, b"GET http://reviews/a HTTP/1.1\r\nHost: reviews\r\n\r\n")).endswith(
        b"/a"
    )
    assert (await get(port, b"GET /b HTTP/1.1\r\nHost: reviews.default:80\r\n\r\n")).endswith(b"/b")
    assert upstream.accepted == 1  # pooled across client connections


async def test_routes_pick_the_subset_and_unmatched_is_no_route(dataplane, upstreams):
    v1 = await upstreams(keepalive_ok)

    async def v2_handler(reader, writer):
        while True:
            await read_request(reader)
            writer.write(ok_response(b"v2"))

    v2 = await upstreams(v2_handler)
    rules = [
        route(
            [{"service": "default/reviews", "labels": {"version": "v2"}, "weight": 1}],
            match={
                "path": {"type": "PathPrefix", "value": "/api"},
                "headers": [{"type": "Exact", "name": "x-user", "value": "42"}],
            },
        )
    ]
    install(dataplane, {"default/reviews": entry("reviews", [v1.port, v2.port], rules)})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    response = await get(port, b"GET /api/x HTTP/1.1\r\nHost: reviews\r\nx-user: 42\r\n\r\n")
    assert response.endswith(b"\r\n\r\nv2")
    response = await get(port, b"GET /api/x HTTP/1.1\r\nHost: reviews\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 404 ") and reason(response) == b"no_route"
    assert v1.accepted == 0


async def test_retry_on_503_within_route_policy(dataplane, upstreams):
    calls = 0

    async def flaky(reader, writer):
        nonlocal calls
        while True:
            await read_request(reader)
            calls += 1
            if calls == 1:
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
            else:
                writer.write(ok_response(b"second"))

    upstream = await upstreams(flaky)
    rules = [
        route(
            [{"service": "default/reviews", "labels": {}, "weight": 1}],
            retry={"attempts": 3, "backoff": 0.001, "codes": [503]},
        )
    ]
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port], rules)})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    response = await get(port, b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
    assert response.endswith(b"second")
    assert dataplane.stats.retries == 1 and calls == 2


async def test_post_not_retried_on_503(dataplane, upstreams):
    async def always_busy(reader, writer):
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")

    upstream = await upstreams(always_busy)
    rules = [
        route(
            [{"service": "default/reviews", "labels": {}, "weight": 1}],
            retry={"attempts": 3, "backoff": 0.001, "codes": [503]},
        )
    ]
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port], rules)})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    response = await get(port, b"POST / HTTP/1.1\r\nHost: reviews\r\ncontent-length: 1\r\n\r\nx")
    assert response.endswith(b"busy") and dataplane.stats.retries == 0


async def test_connect_failure_after_retries_is_503(dataplane, upstreams):
    dead = await upstreams(keepalive_ok)
    dead.close()
    assert dead.server is not None
    await dead.server.wait_closed()
    install(dataplane, {"default/reviews": entry("reviews", [dead.port])})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    response = await get(port, b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 503 ") and reason(response) == b"connect_failure"
    assert dataplane.stats.retries == 1  # the default: one retry of a proven-unsent attempt


async def test_overflow_when_max_requests_reached(dataplane, upstreams):
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def slow(reader, writer):
        await read_request(reader)
        arrived.set()
        await release.wait()
        writer.write(ok_response())

    upstream = await upstreams(slow)
    limits = {"maxConnections": 10, "maxPendingRequests": 10, "maxRequests": 1}
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port], limits=limits)})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    first = await connect(port)
    await first.send(b"GET /1 HTTP/1.1\r\nHost: reviews\r\n\r\n")
    await asyncio.wait_for(arrived.wait(), 5)
    response = await get(port, b"GET /2 HTTP/1.1\r\nHost: reviews\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 503 ") and reason(response) == b"overflow"
    release.set()
    assert (await first.read_response()).endswith(b"ok")


async def test_egress_allow_any_passes_and_registry_only_refuses(dataplane, upstreams):
    outside = await upstreams(keepalive_ok)
    install(dataplane, {}, policy="ALLOW_ANY")
    port = await dataplane.start_outbound("127.0.0.1", 0)
    request = b"GET http://127.0.0.1:%d/out HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (
        outside.port,
        outside.port,
    )
    assert (await get(port, request)).endswith(b"/out")
    install(dataplane, {}, policy="REGISTRY_ONLY")
    response = await get(port, request)
    assert response.startswith(b"HTTP/1.1 403 ") and reason(response) == b"egress_refused"


async def test_on_demand_discovery_then_unknown_service(dataplane, upstreams):
    upstream = await upstreams(keepalive_ok)
    install(dataplane, {})
    asked: list[str] = []

    async def discover(key: str) -> None:
        asked.append(key)
        current = dataplane.holder.current
        assert current is not None
        known = key == "default/ratings"
        wire = (
            entry("ratings", [upstream.port])
            if known
            else {
                "name": key.split("/")[1],
                "namespace": key.split("/")[0],
                "exists": False,
                "endpoints": [],
                "routes": [],
            }
        )
        dataplane.holder.update(
            current.apply(
                {
                    "type": "delta",
                    "protocol": 1,
                    "version": current.version + 1,
                    "services": {key: wire},
                }
            )
        )

    dataplane.holder.on_discover = discover
    port = await dataplane.start_outbound("127.0.0.1", 0)
    assert (await get(port, b"GET /r HTTP/1.1\r\nHost: ratings\r\n\r\n")).endswith(b"/r")
    response = await get(port, b"GET / HTTP/1.1\r\nHost: nothere.default.svc\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 404 ") and reason(response) == b"unknown_service"
    # ALLOW_ANY: a name.namespace the mesh does not know passes through like example.com
    # (here it cannot resolve, so the attempt ends in connect_failure, not unknown_service).
    response = await get(port, b"GET / HTTP/1.1\r\nHost: nothere.default\r\n\r\n")
    assert reason(response) == b"connect_failure"
    assert asked == ["default/ratings", "default/nothere"]


async def test_upstream_listener_always_means_its_service(dataplane, upstreams):
    upstream = await upstreams(keepalive_ok)
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port])})
    port = await dataplane.start_upstream("default/reviews", "127.0.0.1", 0)
    assert (await get(port, b"GET /fixed HTTP/1.1\r\nHost: localhost:1234\r\n\r\n")).endswith(
        b"/fixed"
    )


async def test_outbound_through_inbound_pair(dataplane, upstreams):
    app = await upstreams(keepalive_ok)
    inbound = await dataplane.start_inbound("127.0.0.1", 0, "127.0.0.1", app.port)
    install(dataplane, {"default/reviews": entry("reviews", [inbound])})
    outbound = await dataplane.start_outbound("127.0.0.1", 0)
    assert (await get(outbound, b"GET /pair HTTP/1.1\r\nHost: reviews\r\n\r\n")).endswith(b"/pair")


async def test_drain_finishes_in_flight_and_closes_idle(dataplane, upstreams):
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def slow(reader, writer):
        while True:
            await read_request(reader)
            arrived.set()
            await release.wait()
            writer.write(ok_response(b"done"))

    port = await dataplane.start_inbound("127.0.0.1", 0, "127.0.0.1", (await upstreams(slow)).port)
    idle = await connect(port)
    busy = await connect(port)
    await busy.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await asyncio.wait_for(arrived.wait(), 5)
    async with asyncio.TaskGroup() as tg:
        draining = tg.create_task(dataplane.drain(5.0))
        assert await idle.read_until_close() == b""  # idle keep-alive closed at once
        release.set()
        assert await busy.read_until_close() == (
            b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndone"
        )
    assert draining.done()


async def test_head_without_body_then_reset_is_retried(dataplane, upstreams):
    calls = 0

    async def dies_once(reader, writer):
        nonlocal calls
        while True:
            await read_request(reader)
            calls += 1
            if calls == 1:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
                await writer.drain()
                return  # closes before the body
            writer.write(ok_response(b"whole"))

    upstream = await upstreams(dies_once)
    rules = [
        route(
            [{"service": "default/reviews", "labels": {}, "weight": 1}],
            retry={"attempts": 2, "backoff": 0.001, "codes": [503]},
        )
    ]
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port], rules)})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    assert (await get(port, b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")).endswith(b"whole")
    assert calls == 2


async def test_stats_count_requests_and_render_prometheus(dataplane, upstreams):
    upstream = await upstreams(keepalive_ok)
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port])}, "REGISTRY_ONLY")
    port = await dataplane.start_outbound("127.0.0.1", 0)
    await get(port, b"POST /a HTTP/1.1\r\nHost: reviews\r\ncontent-length: 3\r\n\r\nabc")
    await get(port, b"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n")
    text = dataplane.stats.render_prometheus().decode()
    mesh = 'direction="outbound",src_service="",dst_service="default/reviews",route=""'
    assert f'gossamer_requests_total{{{mesh},code="200"}} 1' in text
    outside = 'direction="outbound",src_service="",dst_service="",route=""'
    assert f'gossamer_requests_total{{{outside},code="403"}} 1' in text  # no raw host label
    assert 'gossamer_rejections_total{direction="outbound",reason="egress_refused"} 1' in text
    assert 'gossamer_request_body_bytes_total{direction="outbound"} 3\n' in text
    assert 'gossamer_response_body_bytes_total{direction="outbound"} 2\n' in text  # "/a"
    assert "gossamer_upstream_attempts_total 1\n" in text


async def test_request_timeout_is_504_and_streaming_response_is_not_cut(dataplane, upstreams):
    release = asyncio.Event()

    async def handler(reader, writer):
        while True:
            request = await read_request(reader)
            if b"/stall" in request:
                await release.wait()
                return
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n")
            await writer.drain()
            await release.wait()  # the rest comes after the route timeout has passed
            writer.write(b"1\r\nb\r\n0\r\n\r\n")

    upstream = await upstreams(handler)
    rules = [route([{"service": "default/reviews", "labels": {}, "weight": 1}])]
    rules[0]["timeouts"]["request"] = 0.2
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port], rules)})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    streaming = await connect(port)
    await streaming.send(b"GET /stream HTTP/1.1\r\nHost: reviews\r\n\r\n")
    response = await get(port, b"GET /stall HTTP/1.1\r\nHost: reviews\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 504 ") and reason(response) == b"upstream_timeout"
    release.set()  # only after the 0.2 s timeout fired for the stalled request
    expected = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n"
    assert await streaming.read_exactly(len(expected)) == expected


async def test_idle_pooled_connections_are_closed_after_the_idle_timeout(dataplane, upstreams):
    closed = asyncio.Event()

    async def notes_close(reader, writer):
        try:
            await keepalive_ok(reader, writer)
        finally:
            closed.set()

    upstream = await upstreams(notes_close)
    port = await dataplane.start_inbound("127.0.0.1", 0, "127.0.0.1", upstream.port)
    assert (await get(port, b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")).endswith(b"/1")
    pool = dataplane.app_pool
    assert pool is not None and pool.idle_count() == 1
    now = asyncio.get_running_loop().time()
    assert pool.sweep(now + 1.0) == 0  # younger than the idle timeout: kept
    assert pool.sweep(now + pool.idle_timeout + 1.0) == 1  # virtual time: past it
    await asyncio.wait_for(closed.wait(), 5)  # the upstream saw the close
    assert (await get(port, b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")).endswith(b"/2")
    assert upstream.accepted == 2


async def test_overflow_when_max_connections_reached(dataplane, upstreams):
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def slow(reader, writer):
        while True:
            await read_request(reader)
            arrived.set()
            await release.wait()
            writer.write(ok_response())

    upstream = await upstreams(slow)
    limits = {"maxConnections": 1, "maxPendingRequests": 10, "maxRequests": 10}
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port], limits=limits)})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    first = await connect(port)
    await first.send(b"GET /1 HTTP/1.1\r\nHost: reviews\r\n\r\n")
    await asyncio.wait_for(arrived.wait(), 5)
    # The one connection is busy and no second may be opened.
    response = await get(port, b"GET /2 HTTP/1.1\r\nHost: reviews\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 503 ") and reason(response) == b"overflow"
    release.set()
    assert (await first.read_response()).endswith(b"ok")
    # Released to the pool: the next request reuses it within the limit.
    assert (await get(port, b"GET /3 HTTP/1.1\r\nHost: reviews\r\n\r\n")).endswith(b"ok")
    assert dataplane.stats.overflows == 1 and upstream.accepted == 1


async def test_backend_request_timeout_retries_a_stalled_attempt(dataplane, upstreams):
    calls = 0

    async def stalls_once(reader, writer):
        nonlocal calls
        while True:
            await read_request(reader)
            calls += 1
            if calls == 1:
                await reader.read()  # never answers this one
                return
            writer.write(ok_response(b"second"))

    upstream = await upstreams(stalls_once)
    rules = [
        route(
            [{"service": "default/reviews", "labels": {}, "weight": 1}],
            retry={"attempts": 2, "backoff": 0.001, "codes": [504]},
        )
    ]
    rules[0]["timeouts"] = {"request": 5.0, "backendRequest": 0.1}
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port], rules)})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    assert (await get(port, b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")).endswith(b"second")
    assert calls == 2 and dataplane.stats.retries == 1


async def test_inbound_authorization_hook_sees_identity_and_can_deny(upstreams):
    from gossamer.proxy.state import SnapshotHolder
    from gossamer.proxy.telemetry.stats import Stats

    seen: list[Any] = []

    def identify(transport: Any) -> str:
        return f"peer:{transport.get_extra_info('peername')[0]}"

    def authorize(ex: Any) -> bool:
        seen.append(ex.client.identity)
        if ex.head.target == b"/private":
            ex.fail(403, "forbidden")
            return False
        return True

    plane = DataPlane(SnapshotHolder(), None, Stats(), authorize=authorize, identify=identify)
    try:
        port = await plane.start_inbound(
            "127.0.0.1", 0, "127.0.0.1", (await upstreams(keepalive_ok)).port
        )
        assert (await get(port, b"GET /public HTTP/1.1\r\nHost: a\r\n\r\n")).endswith(b"/public")
        denied = await get(port, b"GET /private HTTP/1.1\r\nHost: a\r\n\r\n")
        assert denied.startswith(b"HTTP/1.1 403 ") and reason(denied) == b"forbidden"
        assert seen == ["peer:127.0.0.1", "peer:127.0.0.1"]
    finally:
        await plane.close()


async def test_retry_avoids_the_endpoint_that_failed(dataplane, upstreams):
    live = await upstreams(keepalive_ok)
    dead = await upstreams(keepalive_ok)
    dead.close()
    assert dead.server is not None
    await dead.server.wait_closed()
    # Consistent hashing sends a key to the same endpoint every time: without avoidance
    # the retry of a key owned by the dead endpoint would go there again.
    services = {
        "default/reviews": entry(
            "reviews",
            [live.port, dead.port],
            lb={"type": "ConsistentHash", "hashOn": {"header": "x-user"}},
        )
    }
    install(dataplane, services)
    port = await dataplane.start_outbound("127.0.0.1", 0)
    for user in range(12):
        request = b"GET /u HTTP/1.1\r\nHost: reviews\r\nx-user: %d\r\n\r\n" % user
        assert (await get(port, request)).endswith(b"/u")
    assert dataplane.stats.retries > 0  # some keys were owned by the dead endpoint


async def test_discovery_that_never_arrives_is_bounded(upstreams):
    from gossamer.proxy.state import SnapshotHolder
    from gossamer.proxy.telemetry.stats import Stats

    plane = DataPlane(SnapshotHolder(), None, Stats(), discovery_timeout=0.2)
    try:
        install(plane, {})
        asked = asyncio.Event()

        async def silent(key: str) -> None:
            asked.set()  # queued, but the control plane never delivers the entry

        plane.holder.on_discover = silent
        port = await plane.start_outbound("127.0.0.1", 0)
        response = await get(port, b"GET / HTTP/1.1\r\nHost: ghost\r\n\r\n")
        assert asked.is_set()
        assert response.startswith(b"HTTP/1.1 503 ") and reason(response) == b"no_healthy_endpoint"
    finally:
        await plane.close()


async def test_response_stalled_longer_than_idle_timeout_is_cut(dataplane, upstreams):
    upstream_closed = asyncio.Event()

    async def stalls_mid_body(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n")
        await writer.drain()
        await reader.read()  # then nothing more, until the proxy gives up
        upstream_closed.set()

    upstream = await upstreams(stalls_mid_body)
    timeouts = {"connect": 1.0, "request": 0.1, "idle": 0.3}
    install(dataplane, {"default/reviews": entry("reviews", [upstream.port], timeouts=timeouts)})
    port = await dataplane.start_outbound("127.0.0.1", 0)
    client = await connect(port)
    await client.send(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
    try:
        received = await client.read_until_close()
    except ConnectionResetError:
        received = b""
    assert not received.endswith(b"0\r\n\r\n")  # cut, never completed
    await asyncio.wait_for(upstream_closed.wait(), 5)
