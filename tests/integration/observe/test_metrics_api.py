"""The golden-metrics and discovery endpoints against a real control plane on port 0."""

from __future__ import annotations

from typing import Any

import pytest
from observekit import Api, WallClock

from gossamer.control.telemetry import BUCKETS


def series(dst: str, ok: int, failed: int = 0, **extra: Any) -> dict[str, Any]:
    counts = [0] * (len(BUCKETS) + 1)
    counts[2] = ok + failed  # (2.5 ms, 5 ms]
    return {
        "direction": "outbound",
        "src": "default/frontend",
        "dst": dst,
        "route": "",
        "subset": "version=v1",
        "mtls": False,
        "codes": {"2xx": ok, "5xx": failed},
        "counts": counts,
        "sum": 0.004 * (ok + failed),
        "paths": {"/api": ok + failed},
        **extra,
    }


def report(start: float, end: float, *items: dict[str, Any]) -> dict[str, Any]:
    return {"interval": [start, end], "buckets": list(BUCKETS), "series": list(items)}


async def test_reports_merge_into_services_edges_and_top(api: Api, wall: WallClock) -> None:
    t = wall.now
    for proxy, ok in (("frontend-a1", 30), ("frontend-b2", 10)):
        status, body = await api.call(
            "POST",
            f"/api/v1/proxies/{proxy}/telemetry",
            report(t - 5, t, series("default/reviews", ok, 2)),
        )
        assert (status, body) == (200, {"accepted": True})
    # The same report again (a retry after a lost answer) is not counted twice.
    again = report(t - 5, t, series("default/reviews", 30, 2))
    assert await api.call("POST", "/api/v1/proxies/frontend-a1/telemetry", again) == (
        200,
        {"accepted": False},
    )
    wall.now += 1
    status, body = await api.call("GET", "/api/v1/metrics/services?window=1m")
    assert status == 200
    [svc] = body["items"]  # type: ignore[index]
    assert svc["service"] == "default/reviews" and svc["requests"] == 44
    assert svc["successRate"] == pytest.approx(40 / 44, abs=1e-6)
    assert 0.0025 < svc["p50"] <= 0.005 and 0.0025 < svc["p99"] <= 0.005
    assert svc["subsets"]["version=v1"]["requests"] == 44
    status, body = await api.call("GET", "/api/v1/metrics/edges?service=reviews")
    assert [(e["src"], e["dst"], e["requests"], e["mtls"]) for e in body["items"]] == [  # type: ignore[index]
        ("default/frontend", "default/reviews", 44, False)
    ]
    status, body = await api.call("GET", "/api/v1/metrics/top?service=default/reviews&window=30s")
    assert body["items"][0]["path"] == "/api" and body["items"][0]["requests"] == 44  # type: ignore[index]
    wall.now += 120  # the window slides past the report
    status, body = await api.call("GET", "/api/v1/metrics/services?window=60s")
    assert body["items"] == []  # type: ignore[index]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/api/v1/proxies/fe-1/telemetry", {"interval": [2, 1]}, 422, "interval"),
        ("POST", "/api/v1/proxies/fe-1/telemetry", [1], 400, None),
        ("POST", "/api/v1/proxies/Bad_Id/telemetry", {}, 400, None),
        (
            "POST",
            "/api/v1/proxies/fe-1/telemetry",
            report(0, 1, series("reviews", 1)),
            422,
            "series[0].dst",
        ),
        ("GET", "/api/v1/metrics/services?window=11m", None, 400, None),
        ("GET", "/api/v1/metrics/services?window=abc", None, 400, None),
        ("GET", "/api/v1/metrics/services?direction=up", None, 400, None),
        ("GET", "/api/v1/metrics/top", None, 400, None),
        ("GET", "/api/v1/metrics/top?service=a/b/c", None, 400, None),
        ("GET", "/api/v1/metrics/top?service=x&limit=0", None, 400, None),
        ("GET", "/api/v1/tap?service=x&status=6xx", None, 400, None),
        ("GET", "/api/v1/tap?service=x&path=nope", None, 400, None),
        ("GET", "/api/v1/tap?service=nobody", None, 404, None),
    ],
)
async def test_bad_input_gets_a_precise_4xx(
    api: Api, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    got, answer = await api.call(method, path, body)
    assert got == status, answer
    assert answer["status"] == status  # type: ignore[index]
    if field:
        assert answer["field"] == field  # type: ignore[index]


async def test_prometheus_targets_list_registered_stats_listeners(api: Api) -> None:
    base = {"address": "127.0.0.1", "port": 15006, "leaseSeconds": 30}
    regs = {
        "reviews-aa": {
            **base,
            "service": "reviews",
            "statsPort": 15020,
            "labels": {"version": "v2"},
        },
        "ratings-bb": {**base, "service": "ratings", "statsPort": 15021, "namespace": "shop"},
        "legacy-cc": {**base, "service": "legacy"},  # no stats port: not a target
    }
    for proxy, body in regs.items():
        status, answer = await api.call("POST", f"/api/v1/proxies/{proxy}/register", body)
        assert status == 200, answer
    status, targets = await api.call("GET", "/api/v1/prometheus/targets")
    assert status == 200
    assert targets == [
        {
            "targets": ["127.0.0.1:15020"],
            "labels": {
                "namespace": "default",
                "service": "reviews",
                "instance": "reviews-aa",
                "version": "v2",
            },
        },
        {
            "targets": ["127.0.0.1:15021"],
            "labels": {"namespace": "shop", "service": "ratings", "instance": "ratings-bb"},
        },
    ]
    status, answer = await api.call(
        "POST", "/api/v1/proxies/x-dd/register", {**base, "service": "x", "statsPort": 0}
    )
    assert status == 422 and answer["field"] == "spec.statsPort"  # type: ignore[index]
