"""`gossamer stat`, `edges`, `top` and `tap` (the real binary) against a real control plane
holding reports pushed over HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from observekit import Api, WallClock

from gossamer.control.telemetry import BUCKETS

GOSSAMER = str(Path(sys.executable).with_name("gossamer"))


async def gossamer(api: Api, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        GOSSAMER, *args, "--control", api.base,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def series(src: str, dst: str, route: str, codes: dict[str, int], bucket: int) -> dict[str, Any]:
    counts = [0] * (len(BUCKETS) + 1)
    counts[bucket] = sum(codes.values())
    return {"direction": "outbound", "src": src, "dst": dst, "route": route,
            "subset": "version=v1", "mtls": True, "codes": codes, "counts": counts,
            "sum": 0.0, "paths": {"/reviews/1": counts[bucket]}}  # fmt: skip


async def test_stat_edges_top(api: Api, wall: WallClock) -> None:
    body = {
        "interval": [wall.now - 10, wall.now],
        "buckets": list(BUCKETS),
        "series": [
            series(
                "default/frontend",
                "default/reviews",
                "default/reviews#0",
                {"2xx": 90, "5xx": 10},
                4,
            ),
            series("default/reviews", "default/ratings", "", {"2xx": 50}, 1),
        ],
    }
    status, answer = await api.call("POST", "/api/v1/proxies/frontend-1/telemetry", body)
    assert status == 200, answer

    code, out, err = await gossamer(api, "stat", "-o", "json")
    assert code == 0, err
    items = {i["service"]: i for i in json.loads(out)["items"]}
    assert items["default/reviews"]["requests"] == 100
    assert items["default/reviews"]["successRate"] == 0.9

    code, out, err = await gossamer(api, "stat", "reviews", "--routes", "--window", "30s")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["SERVICE", "ROUTE", "SUCCESS"]
    assert lines[1].split()[:4] == ["default/reviews", "90.00%", "10", "17.5ms"]  # rps 100/10 s
    assert lines[2].split()[0] == "default/reviews#0"
    assert "ratings" not in out

    code, out, err = await gossamer(api, "edges")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        ("default/frontend", "default/reviews", "yes"),
        ("default/reviews", "default/ratings", "yes"),
    ]

    code, out, err = await gossamer(api, "top", "reviews")
    assert code == 0, err
    assert out.splitlines()[1].split() == ["/reviews/1", "100", "10"]

    code, out, err = await gossamer(api, "stat", "--window", "forever")
    assert code == 1 and "window 'forever'" in err


async def test_tap_without_sidecars_says_so(api: Api) -> None:
    code, _, err = await gossamer(api, "tap", "reviews", "--status", "5xx")
    assert code == 1 and "no healthy sidecar of default/reviews" in err, err
