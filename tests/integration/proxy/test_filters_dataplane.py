"""HTTPRoute filters through a real outbound data plane (uvloop, real sockets): the bytes
the upstream receives and the bytes the client gets, for every filter, mirrors and faults."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import uvloop
from test_framing_kit import connect, ok_response, read_request

from gossamer.proxy.dataplane import DataPlane
from gossamer.proxy.outbound.target import OutboundTarget
from gossamer.proxy.snapshot import Snapshot

pytestmark = pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy"')


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return uvloop.EventLoopPolicy()


class Recorder:
    """An upstream that records each request and answers `body` (with `extra` header lines)."""

    def __init__(self, body: bytes = b"ok", extra: bytes = b"", delay: float = 0.0) -> None:
        self.requests: list[bytes] = []
        self.arrived = asyncio.Event()
        self.body = body
        self.extra = extra
        self.delay = delay

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            self.requests.append(request)
            self.arrived.set()
            if self.delay:
                await asyncio.sleep(self.delay)  # a slow server, not a readiness wait
            writer.write(ok_response(self.body, self.extra))
            await writer.drain()

    def head_lines(self, i: int = -1) -> list[bytes]:
        return self.requests[i].split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def entry(name: str, ports: list[int], routes: list[Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "default",
        "exists": True,
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
        "policy": {"timeouts": {"request": 2.0}},
    }


def rule(filters: list[Any], prefix: str = "/", **extra: Any) -> dict[str, Any]:
    return {
        "route": "default/reviews",
        "rule": 0,
        "match": {"path": {"type": "PathPrefix", "value": prefix}},
        "backends": extra.pop("backends", [{"service": "default/reviews", "weight": 1}]),
        "filters": filters,
        **extra,
    }


async def start(plane: DataPlane, services: dict[str, Any]) -> int:
    plane.holder.update(
        Snapshot.from_wire({"type": "snapshot", "protocol": 1, "version": 1, "services": services})
    )
    return await plane.start_outbound("127.0.0.1", 0)


async def get(port: int, path: bytes = b"/", extra: bytes = b"", body: bytes = b"") -> bytes:
    client = await connect(port)
    length = b"content-length: %d\r\n" % len(body) if body else b""
    method = b"POST" if body else b"GET"
    await client.send(
        method
        + b" "
        + path
        + b" HTTP/1.1\r\nhost: reviews:9080\r\n"
        + extra
        + length
        + b"\r\n"
        + body
    )
    response = await client.read_response()
    client.close()
    return response


def header(response: bytes, name: bytes) -> list[bytes]:
    head = response.split(b"\r\n\r\n", 1)[0]
    return [
        line.split(b": ", 1)[1]
        for line in head.split(b"\r\n")[1:]
        if line.split(b":", 1)[0].lower() == name
    ]


def modifier(kind: str, **ops: Any) -> dict[str, Any]:
    return {"type": kind, kind[0].lower() + kind[1:]: {"set": [], "add": [], "remove": [], **ops}}


async def test_request_and_response_headers_set_add_remove(dataplane, upstreams):
    app = Recorder(extra=b"x-resp-gone: 1\r\nx-resp-add: a\r\nx-resp-set: old\r\n")
    upstream = await upstreams(app)
    filters = [
        modifier(
            "RequestHeaderModifier",
            set=[{"name": "X-Set", "value": "new"}],
            add=[{"name": "X-Add", "value": "b"}],
            remove=["x-gone"],
        ),
        modifier(
            "ResponseHeaderModifier",
            set=[{"name": "X-Resp-Set", "value": "new"}],
            add=[{"name": "X-Resp-Add", "value": "b"}],
            remove=["X-Resp-Gone"],
        ),
    ]
    port = await start(
        dataplane, {"default/reviews": entry("reviews", [upstream.port], [rule(filters)])}
    )
    response = await get(port, extra=b"x-set: old\r\nx-add: a\r\nx-gone: 1\r\nx-keep: k\r\n")
    assert response.startswith(b"HTTP/1.1 200 ")
    sent = app.head_lines()
    assert b"x-set: new" in sent and b"x-set: old" not in sent
    assert b"x-add: a,b" in sent and b"x-keep: k" in sent
    assert not any(line.startswith(b"x-gone") for line in sent)
    assert header(response, b"x-resp-set") == [b"new"]
    assert header(response, b"x-resp-add") == [b"a,b"]
    assert header(response, b"x-resp-gone") == []


async def test_redirect_is_answered_by_the_sidecar(dataplane, upstreams):
    app = Recorder()
    upstream = await upstreams(app)
    redirect = {
        "type": "RequestRedirect",
        "requestRedirect": {
            "scheme": "https",
            "statusCode": 301,
            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"},
        },
    }
    port = await start(
        dataplane,
        {
            "default/reviews": entry(
                "reviews", [upstream.port], [rule([redirect], "/old", backends=[])]
            )
        },
    )
    response = await get(port, b"/old/page?x=1")
    assert response.startswith(b"HTTP/1.1 301 Moved Permanently\r\n")
    assert header(response, b"location") == [b"https://reviews/new/page?x=1"]
    assert header(response, b"x-gossamer-reason") == [b"redirect"]
    assert app.requests == [] and upstream.accepted == 0


async def test_url_rewrite_of_path_and_host(dataplane, upstreams):
    app = Recorder()
    upstream = await upstreams(app)
    rewrite = {
        "type": "URLRewrite",
        "urlRewrite": {
            "hostname": "ratings.internal",
            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"},
        },
    }
    port = await start(
        dataplane, {"default/reviews": entry("reviews", [upstream.port], [rule([rewrite], "/api")])}
    )
    assert (await get(port, b"/api/items?id=3")).startswith(b"HTTP/1.1 200 ")
    assert (await get(port, b"/api")).startswith(b"HTTP/1.1 200 ")
    assert app.head_lines(0)[0] == b"GET /v2/items?id=3 HTTP/1.1"
    assert app.head_lines(1)[0] == b"GET /v2 HTTP/1.1"
    assert [line for line in app.head_lines(0) if line.startswith(b"host")] == [
        b"host: ratings.internal"
    ]


async def test_per_backend_filters_apply_only_to_that_backend(dataplane, upstreams):
    app = Recorder()
    upstream = await upstreams(app)
    tag = modifier("RequestHeaderModifier", set=[{"name": "x-variant", "value": "v1"}])
    backends = [
        {"service": "default/reviews", "labels": {"version": "v1"}, "weight": 1, "filters": [tag]}
    ]
    port = await start(
        dataplane,
        {"default/reviews": entry("reviews", [upstream.port], [rule([], backends=backends)])},
    )
    assert (await get(port)).startswith(b"HTTP/1.1 200 ")
    assert b"x-variant: v1" in app.head_lines()


def mirror_setup(percent: int = 100) -> list[Any]:
    return [
        {
            "type": "RequestMirror",
            "requestMirror": {"service": "default/shadow", "percent": percent},
        }
    ]


def mirrors_of(plane: DataPlane) -> Any:
    target = plane.listeners[0].target
    assert isinstance(target, OutboundTarget)
    return target.mirrors.counters


async def test_mirror_receives_a_copy_with_shadow_host_and_body(dataplane, upstreams):
    main, shadow = Recorder(b"main"), Recorder(b"shadow")
    main_up, shadow_up = await upstreams(main), await upstreams(shadow)
    port = await start(
        dataplane,
        {
            "default/reviews": entry("reviews", [main_up.port], [rule(mirror_setup())]),
            "default/shadow": entry("shadow", [shadow_up.port]),
        },
    )
    response = await get(port, b"/post", body=b"hello mirror")
    assert response.endswith(b"\r\n\r\nmain")
    await asyncio.wait_for(shadow.arrived.wait(), 5)
    copy = shadow.requests[0]
    assert copy.startswith(b"POST /post HTTP/1.1\r\n")
    assert b"\r\nhost: reviews-shadow:9080\r\n" in copy
    assert copy.endswith(b"\r\n\r\nhello mirror")
    assert b"host: reviews:9080" in main.head_lines()
    assert mirrors_of(dataplane).sent == 1


async def test_mirror_down_or_slow_leaves_the_response_untouched(dataplane, upstreams):
    main = Recorder(b"main")
    slow = Recorder(b"late", delay=5.0)
    main_up, slow_up = await upstreams(main), await upstreams(slow)
    dead = await upstreams(main)
    dead_port = dead.port
    dead.close()  # nothing listens there any more
    assert dead.server is not None
    await dead.server.wait_closed()
    mirror_both = [
        *mirror_setup(),
        {"type": "RequestMirror", "requestMirror": {"service": "default/slow", "percent": 100}},
    ]
    port = await start(
        dataplane,
        {
            "default/reviews": entry("reviews", [main_up.port], [rule(mirror_both)]),
            "default/shadow": entry("shadow", [dead_port]),
            "default/slow": entry("slow", [slow_up.port]),
        },
    )
    started = time.monotonic()
    for _ in range(5):
        assert (await get(port)).endswith(b"\r\n\r\nmain")
    assert time.monotonic() - started < 1.0  # the slow shadow (5 s each) never held anyone
    counters = mirrors_of(dataplane)
    await asyncio.wait_for(slow.arrived.wait(), 5)
    assert counters.sent == 10
    for _ in range(100):  # connect failures arrive as callbacks; give them their turns
        if counters.failed >= 5:
            break
        await asyncio.sleep(0.01)
    assert counters.failed == 5  # the dead one each time; the slow ones are still in flight
    metrics = dataplane.stats.render_prometheus().decode().splitlines()
    assert "gossamer_mirror_copies_failed 5" in metrics
    assert "gossamer_mirror_copies_sent 10" in metrics


async def test_mirror_percentage_is_sampled(dataplane, upstreams):
    main, shadow = Recorder(), Recorder()
    main_up, shadow_up = await upstreams(main), await upstreams(shadow)
    port = await start(
        dataplane,
        {
            "default/reviews": entry("reviews", [main_up.port], [rule(mirror_setup(30))]),
            "default/shadow": entry("shadow", [shadow_up.port]),
        },
    )
    for _ in range(200):
        await get(port)
    sent = mirrors_of(dataplane).sent
    assert 30 <= sent <= 95, sent  # 60 expected; binomial sd 6.5


async def test_fault_abort_at_100_percent_and_short_delay(dataplane, upstreams):
    app = Recorder()
    upstream = await upstreams(app)
    abort = {"type": "Fault", "fault": {"abort": {"status": 503, "percent": 100}}}
    delay = {"type": "Fault", "fault": {"delay": {"seconds": 0.2, "percent": 100}}}
    routes = [
        {**rule([abort], "/abort"), "rule": 0},
        {**rule([delay], "/delay"), "rule": 1},
    ]
    port = await start(dataplane, {"default/reviews": entry("reviews", [upstream.port], routes)})
    response = await get(port, b"/abort")
    assert response.startswith(b"HTTP/1.1 503 ")
    assert header(response, b"x-gossamer-reason") == [b"fault_injected"]
    assert app.requests == []
    started = time.monotonic()
    assert (await get(port, b"/delay")).startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - started >= 0.2
    assert len(app.requests) == 1


async def test_fault_abort_rate_over_many_requests(dataplane, upstreams):
    upstream = await upstreams(Recorder())
    abort = {"type": "Fault", "fault": {"abort": {"status": 418, "percent": 25}}}
    port = await start(
        dataplane, {"default/reviews": entry("reviews", [upstream.port], [rule([abort])])}
    )
    statuses = [int((await get(port)).split(b" ", 2)[1]) for _ in range(400)]
    aborted = statuses.count(418)
    assert statuses.count(200) + aborted == 400
    assert 60 <= aborted <= 140, aborted  # 100 expected; binomial sd 8.7


async def test_sticky_cookie_is_handed_out_then_keeps_the_variant(dataplane, upstreams):
    v1, v2 = Recorder(b"v1"), Recorder(b"v2")
    up1, up2 = await upstreams(v1), await upstreams(v2)
    backends = [
        {"service": "default/reviews", "labels": {"version": "v1"}, "weight": 50},
        {"service": "default/reviews", "labels": {"version": "v2"}, "weight": 50},
    ]
    sticky = rule([], backends=backends, sessionPersistence={"cookie": "gsm"})
    port = await start(
        dataplane, {"default/reviews": entry("reviews", [up1.port, up2.port], [sticky])}
    )
    seen = set()
    for _ in range(20):
        first = await get(port)
        cookie = header(first, b"set-cookie")[0].split(b";", 1)[0]
        assert cookie.startswith(b"gsm=")
        variant = first.rsplit(b"\r\n\r\n", 1)[1]
        seen.add(variant)
        for _ in range(5):
            again = await get(port, extra=b"cookie: other=1; " + cookie + b"\r\n")
            assert again.rsplit(b"\r\n\r\n", 1)[1] == variant
            assert header(again, b"set-cookie") == []
    assert seen == {b"v1", b"v2"}  # 20 sessions at 50/50: both variants (1 in 500k fails)


async def test_weighted_split_chi_square_over_10000_requests(dataplane, upstreams):
    v1, v2, v3 = Recorder(b"v1"), Recorder(b"v2"), Recorder(b"v3")
    ups = [await upstreams(v) for v in (v1, v2, v3)]
    weights = {b"v1": 70, b"v2": 20, b"v3": 10}
    backends = [
        {"service": "default/reviews", "labels": {"version": v.decode()}, "weight": w}
        for v, w in weights.items()
    ]
    routes = [rule([], backends=backends)]
    port = await start(
        dataplane, {"default/reviews": entry("reviews", [u.port for u in ups], routes)}
    )
    counts: dict[bytes, int] = dict.fromkeys(weights, 0)

    async def client(n: int) -> None:
        conn = await connect(port)
        for _ in range(n):
            await conn.send(b"GET / HTTP/1.1\r\nhost: reviews\r\n\r\n")
            counts[(await conn.read_response()).rsplit(b"\r\n\r\n", 1)[1]] += 1
        conn.close()

    async with asyncio.TaskGroup() as tg:
        for _ in range(4):
            tg.create_task(client(2500))
    total = sum(counts.values())
    chi2 = sum((counts[v] - total * w / 100) ** 2 / (total * w / 100) for v, w in weights.items())
    assert total == 10_000
    assert chi2 < 13.82, (counts, chi2)  # 2 degrees of freedom, p = 0.001
