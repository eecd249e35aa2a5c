"""`gossamer stat` (the real binary, `-o json`) agrees with what a load generator measured
through real sidecars: request counts exactly, p50/p95/p99 within one histogram bucket.

The echo app's `/slow/<ms>` spreads latencies over several buckets, each delay in the
middle of its bucket, so "within one bucket" is a real check and not a given."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import httpx
from helpers import GOSSAMER, Procs, http_get

from gossamer.control.telemetry import BUCKETS
from gossamer.control.telemetry.histogram import bucket_of

# One round per worker: 6 fast, 3 at 35 ms (the 25-50 ms bucket), 1 at 170 ms (100-250 ms).
ROUND = ["/"] * 6 + ["/slow/35"] * 3 + ["/slow/170"]
ROUNDS = 8
WORKERS = 4


async def worker(port: int, latencies: list[float], codes: list[int]) -> None:
    """Keep-alive GETs back to back; each request's latency measured here, by the caller."""
    conn = None
    for _ in range(ROUNDS):
        for path in ROUND:
            started = time.perf_counter()
            status, _, _, conn = await http_get(port, "echo", path, conn)
            latencies.append(time.perf_counter() - started)
            codes.append(status)
    if conn is not None:
        conn[1].close()


def exact_quantile(q: float, values: list[float]) -> float:
    """The nearest-rank quantile of the raw samples."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def stat_json(control: str, data_dir: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *GOSSAMER, "stat", "echo", "-o", "json", "--window", "1m", "--control", control,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GOSSAMER_DATA_DIR": str(data_dir)},
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return dict(json.loads(out))


async def test_stat_matches_the_load_generator(tmp_path: Path) -> None:
    procs = Procs(tmp_path)
    try:
        control = await procs.control()
        port = control.port("port")
        base = f"http://127.0.0.1:{port}"
        await procs.instance(port, "echo", "echo-1", extra=["--report-interval", "0.3s"])
        client = await procs.instance(
            port, "client", "client", extra=["--upstream", "echo=0", "--report-interval", "0.3s"]
        )
        latencies: list[float] = []
        codes: list[int] = []
        async with asyncio.TaskGroup() as tg:
            for _ in range(WORKERS):
                tg.create_task(worker(client.port("outbound"), latencies, codes))
        sent = WORKERS * ROUNDS * len(ROUND)
        assert codes == [200] * sent

        # The client sidecar pushes every 0.3 s: wait until its last report has landed.
        async with httpx.AsyncClient(base_url=base, headers=control.auth_headers()) as http:
            async with asyncio.timeout(10):
                while True:
                    answer = (await http.get("/api/v1/metrics/services?window=1m")).json()
                    seen = {i["service"]: i["requests"] for i in answer["items"]}
                    if seen.get("default/echo", 0) >= sent:
                        break
                    await asyncio.sleep(0.1)

        doc = await stat_json(base, tmp_path / "control")
        [row] = [i for i in doc["items"] if i["service"] == "default/echo"]
        assert row["requests"] == sent, row  # exactly: each request counted once
        assert row["successRate"] == 1.0, row
        for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            measured = exact_quantile(q, latencies)
            reported = float(row[key])
            gap = abs(bucket_of(measured) - bucket_of(reported))
            print(f"{key}: load {measured * 1000:.1f} ms, stat {reported * 1000:.1f} ms")
            assert gap <= 1, (key, measured, reported, BUCKETS)
        # The spread is real: p50 and p99 sit buckets apart.
        assert bucket_of(float(row["p99"])) - bucket_of(float(row["p50"])) >= 2, row
    finally:
        await procs.close()
