"""Canary, split and snapshot endpoints against a real control plane and SQLite store, with
metrics arriving the real way: telemetry reports POSTed as proxies send them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from controlkit import Api, route, service

from gossamer.control.server import ControlServer, running
from gossamer.control.telemetry import BUCKETS
from gossamer.store.sqlite import SQLiteStore

CANARY = "/api/v1/namespaces/default/canaries/reviews"
_clock = itertools.count(1)


@pytest.fixture
async def fast(tmp_path: Path) -> AsyncIterator[Api]:
    """A control plane whose canary controller ticks every 20 ms."""
    store = SQLiteStore(tmp_path / "gossamer.db")
    server = ControlServer(store, port=0, canary_tick_seconds=0.02)
    try:
        async with running(server), aiohttp.ClientSession() as session:
            yield Api(server, session)
    finally:
        await store.close()


def spec(**over: Any) -> dict[str, Any]:
    base = {
        "service": "reviews",
        "baseline": {"version": "v1"},
        "canary": {"version": "v2"},
        "steps": [50, 100],
        "interval": "200ms",
        "thresholds": {"maxErrorRate": 1, "minRequests": 20},
    }
    return {**base, **over}


async def report(
    api: Api, version: str, ok: int, failed: int = 0, proxy: str = "reviews-p1"
) -> None:
    """One inbound telemetry report from a `version` sidecar (docs/protocol.md)."""
    import time

    end = time.time() + next(_clock) * 1e-3  # strictly increasing per proxy
    counts = [0] * 14
    counts[3] = ok + failed  # everything in the 5-10 ms bucket
    series = {
        "direction": "inbound",
        "src": "default/frontend",
        "dst": "default/reviews",
        "route": "",
        "subset": f"version={version}",
        "mtls": False,
        "codes": {"2xx": ok, "5xx": failed},
        "counts": counts,
        "sum": 0.008 * (ok + failed),
        "paths": {},
    }
    body = {"interval": [end - 0.1, end], "buckets": list(BUCKETS), "series": [series]}
    status, out = await api.call("POST", f"/api/v1/proxies/{proxy}/telemetry", body)
    assert status == 200 and out["accepted"], out


async def until(
    api: Api, done: Callable[[dict[str, Any]], bool], feed: Any = None
) -> dict[str, Any]:
    """Canary status once `done` holds, waiting on controller ticks (at most ~10 s)."""
    for _ in range(500):
        if feed is not None:
            await feed()
        _, doc = await api.call("GET", CANARY + "/status")
        if done(doc):
            return doc
        await api.server.canaries.ticked.wait()
    raise AssertionError(f"canary never got there: {doc['status']}")


async def weights(api: Api) -> list[tuple[str, int]]:
    _, doc = await api.call("GET", "/api/v1/namespaces/default/httproutes/reviews")
    refs = doc["spec"]["rules"][0]["backendRefs"]
    return [(r["labels"]["version"], r["weight"]) for r in refs]


async def test_a_healthy_canary_walks_its_steps_and_is_promoted(fast: Api) -> None:
    await fast.apply(service("reviews"))
    status, doc = await fast.call("POST", CANARY + "/start", {"spec": spec()})
    assert status == 200, doc
    assert doc["status"]["phase"] == "Progressing" and doc["status"]["weights"]["canary"] == 50
    assert await weights(fast) == [("v1", 50), ("v2", 50)]

    async def healthy() -> None:
        await report(fast, "v2", ok=30)
        await report(fast, "v1", ok=30, proxy="reviews-p0")

    doc = await until(fast, lambda d: d["status"]["phase"] == "Promoted", healthy)
    assert await weights(fast) == [("v1", 0), ("v2", 100)]
    history = doc["status"]["history"]
    assert [h["action"] for h in history] == ["start", "advance", "promote"]
    assert history[-1]["canary"]["requests"] >= 20 and history[-1]["canary"]["errorRate"] == 0
    assert history[-1]["baseline"]["requests"] >= 30
    # Finished: commands are refused with a clear conflict.
    status, err = await fast.call("POST", CANARY + "/abort", {})
    assert status == 409 and "already Promoted" in err["message"]


async def test_a_failing_canary_is_rolled_back_at_once(fast: Api) -> None:
    await fast.apply(service("reviews"))
    await fast.call("POST", CANARY + "/start", {"spec": spec(interval="1h")})

    async def failing() -> None:
        await report(fast, "v2", ok=16, failed=4)

    doc = await until(fast, lambda d: d["status"]["phase"] == "Aborted", failing)
    assert await weights(fast) == [("v1", 100), ("v2", 0)]
    last = doc["status"]["history"][-1]
    assert last["action"] == "rollback" and "error rate 20.00% > 1%" in last["reason"]
    assert last["canary"]["errorRate"] == 0.2


async def test_operator_pause_resume_abort_and_restart(fast: Api) -> None:
    await fast.apply(service("reviews"))
    await fast.call("POST", CANARY + "/start", {"spec": spec(interval="1h")})
    status, doc = await fast.call("POST", CANARY + "/pause", {})
    assert status == 200 and doc["status"]["phase"] == "Paused"
    status, err = await fast.call("POST", CANARY + "/pause", {})
    assert status == 409
    _, doc = await fast.call("POST", CANARY + "/resume", {})
    assert doc["status"]["phase"] == "Progressing"
    # A second start while one runs is refused; split by hand too.
    status, err = await fast.call("POST", CANARY + "/start", {"spec": spec()})
    assert status == 409 and "Progressing" in err["message"]
    split = "/api/v1/namespaces/default/services/reviews/split"
    status, err = await fast.call("POST", split, {"weights": {"v1": 1}})
    assert status == 409 and "canary" in err["message"]
    _, doc = await fast.call("POST", CANARY + "/abort", {})
    assert doc["status"]["phase"] == "Aborted" and "operator" in doc["status"]["message"]
    assert await weights(fast) == [("v1", 100), ("v2", 0)]
    # After an abort a new run may start, from the first step again.
    _, doc = await fast.call("POST", CANARY + "/start", {"spec": spec(interval="1h")})
    assert doc["status"]["phase"] == "Progressing" and doc["status"]["step"] == 0
    assert [h["action"] for h in doc["status"]["history"]] == ["start"]


async def test_a_restarted_control_plane_resumes_the_run(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gossamer.db")
    try:
        server = ControlServer(store, port=0, canary_tick_seconds=0.02)
        async with running(server), aiohttp.ClientSession() as session:
            api = Api(server, session)
            await api.apply(service("reviews"))
            _, first = await api.call("POST", CANARY + "/start", {"spec": spec(interval="1h")})
        server = ControlServer(store, port=0, canary_tick_seconds=0.02)
        async with running(server), aiohttp.ClientSession() as session:
            api = Api(server, session)
            for _ in range(3):
                await server.canaries.ticked.wait()
            _, doc = await api.call("GET", CANARY + "/status")
            kept = ("phase", "step", "stepStartedAt", "history", "weights")
            assert {k: doc["status"][k] for k in kept} == {k: first["status"][k] for k in kept}
            _, doc = await api.call("POST", CANARY + "/promote", {})
            assert doc["status"]["phase"] == "Promoted"
            assert await weights(api) == [("v1", 0), ("v2", 100)]
    finally:
        await store.close()


async def test_bad_canary_requests_name_the_field(fast: Api) -> None:
    await fast.apply(service("reviews"))
    status, err = await fast.call("POST", CANARY + "/start", {"spec": spec(steps=[50, 20])})
    assert status == 422 and err["field"] == "spec.steps"
    bad_rate = spec(thresholds={"maxErrorRate": 120})
    status, err = await fast.call("POST", CANARY + "/start", {"spec": bad_rate})
    assert status == 422 and err["field"] == "spec.thresholds.maxErrorRate"
    status, err = await fast.call(
        "POST", CANARY + "/start", {"spec": spec(canary={"version": "v1"})}
    )
    assert status == 422 and "same subset" in err["message"]
    status, err = await fast.call("POST", CANARY + "/start", {"spec": spec(service="nope")})
    assert status == 422 and err["field"] == "spec.service"
    status, err = await fast.call("GET", "/api/v1/namespaces/default/canaries/none/status")
    assert status == 404
    status, err = await fast.call("POST", "/api/v1/namespaces/default/canaries/none/abort", {})
    assert status == 404
    status, err = await fast.call("POST", "/api/v1/namespaces/BAD_NS/canaries/x/abort", {})
    assert status == 400


async def test_split_writes_weights_and_switches_blue_green(api: Api) -> None:
    await api.apply(service("reviews"))
    split = "/api/v1/namespaces/default/services/reviews/split"
    status, out = await api.call("POST", split, {"weights": {"v1": 90, "v2": 10}})
    assert status == 200, out
    assert await weights(api) == [("v1", 90), ("v2", 10)]
    _, out = await api.call("POST", split, {"weights": {"v2": 100}, "waitSeconds": 1})
    assert await weights(api) == [("v2", 100)] and out["sync"]["complete"] is True
    for body, field in (
        ({"weights": {"v1": -1}}, "weights.v1"),
        ({"weights": {"v1": 0}}, "sum to zero"),
        ({"weights": {"v1": "x"}}, "weights.v1"),
        ({"weights": {"v 1": 5}}, "weights.v 1"),
        ({"weights": []}, "weights must be"),
        ({"weights": {"v1": 1}, "waitSeconds": -1}, "waitSeconds"),
    ):
        status, err = await api.call("POST", split, body)
        assert status == 400 and field in err["message"], (body, err)
    status, err = await api.call(
        "POST", "/api/v1/namespaces/default/services/ghost/split", {"weights": {"v1": 1}}
    )
    assert status == 404


async def test_split_keeps_rules_pinned_by_a_match(api: Api) -> None:
    pinned = route("reviews", "reviews", [{"name": "reviews", "labels": {"version": "v3"}}])
    pinned["spec"]["rules"].insert(
        0,
        {
            "matches": [{"headers": [{"name": "x-beta", "value": "1"}]}],
            "backendRefs": [{"name": "reviews", "labels": {"version": "v2"}}],
        },
    )
    await api.apply(service("reviews"), pinned)
    split = "/api/v1/namespaces/default/services/reviews/split"
    status, _ = await api.call("POST", split, {"weights": {"v1": 1, "v3": 3}})
    assert status == 200
    _, doc = await api.call("GET", "/api/v1/namespaces/default/httproutes/reviews")
    beta, default = doc["spec"]["rules"]
    assert [r["labels"] for r in beta["backendRefs"]] == [{"version": "v2"}]
    assert [(r["labels"]["version"], r["weight"]) for r in default["backendRefs"]] == [
        ("v1", 1),
        ("v3", 3),
    ]


async def test_snapshot_endpoint_returns_the_compiled_entry(api: Api) -> None:
    sticky = route("reviews", "reviews", [{"name": "reviews", "labels": {"version": "v1"}}])
    sticky["spec"]["rules"][0]["sessionPersistence"] = {"type": "Header", "sessionName": "X-User"}
    await api.apply(service("reviews"), sticky)
    status, wire = await api.call("GET", "/api/v1/snapshot/namespaces/default/services/reviews")
    assert status == 200 and wire["type"] == "snapshot"
    entry = wire["services"]["default/reviews"]
    assert entry["routes"][0]["sessionPersistence"] == {"header": "x-user"}
    assert entry["routes"][0]["backends"][0]["labels"] == {"version": "v1"}
    status, _ = await api.call("GET", "/api/v1/snapshot/namespaces/default/services/ghost")
    assert status == 404
