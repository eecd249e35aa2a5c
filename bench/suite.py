"""Runs the data-plane suite: start every topology once, check it, then measure."""

from __future__ import annotations

from typing import Any

import httpx

from bench import gossamer_mesh
from bench.certs import write_certs
from bench.dataplane import (
    LOAD_CORE,
    PROXY_CORE,
    DataplaneSettings,
    fixed_rate_rounds,
    throughput_runs,
)
from bench.latency import LatencySettings, added_over_direct, knee, latency_runs, rates
from bench.peers import BODY_SIZES, prepare_workdir, start_upstream
from bench.procs import HarnessError, ProcessSet
from bench.topology import (
    PATHS,
    PEERS,
    TLS_PATH,
    Topology,
    available_peers,
    direct,
    peer_topology,
)


async def preflight(topology: Topology, body: str) -> None:
    """One request through the path; it must come back 200 with exactly the upstream's body."""
    url = f"http://127.0.0.1:{topology.port}/{body}"
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            response = await client.get(url, headers={"Host": topology.host})
        except httpx.HTTPError as exc:
            raise HarnessError(f"{topology.name}: GET /{body} failed: {exc!r}") from exc
    if response.status_code != 200 or len(response.content) != BODY_SIZES[body]:
        raise HarnessError(
            f"{topology.name}: GET /{body} gave {response.status_code} with "
            f"{len(response.content)} bytes (want 200, {BODY_SIZES[body]}): "
            f"{response.headers.get('x-gossamer-reason', '')} {response.text[:200]!r}"
        )


async def start_topologies(procs: ProcessSet, notes: list[str]) -> list[Topology]:
    prepare_workdir(procs.workdir)
    _, upstream_port = await start_upstream(procs, LOAD_CORE)
    topologies = [direct(upstream_port)]
    peers = available_peers()
    for missing in sorted(set(PEERS) - set(peers)):
        notes.append(f"{missing} is not installed: skipped (make system-deps)")
    certs = write_certs(procs.workdir / "tls")
    for peer in peers:
        for path in (*PATHS, TLS_PATH):
            topologies.append(
                await peer_topology(procs, peer, path, upstream_port, PROXY_CORE, certs)
            )
    skipped = gossamer_mesh.unavailable()
    if skipped:
        notes.append(f"gossamer skipped: {skipped}")
    else:
        topologies += await gossamer_mesh.start(procs, upstream_port, PROXY_CORE, LOAD_CORE)
    return topologies


async def run_dataplane(
    procs: ProcessSet, settings: DataplaneSettings, latency: LatencySettings
) -> dict[str, Any]:
    notes: list[str] = []
    topologies = await start_topologies(procs, notes)
    for topology in topologies:
        for body in settings.bodies:
            await preflight(topology, body)
    wanted = settings.wrk_topologies
    measured = [t for t in topologies if wanted is None or t.name in wanted]
    fixed = []
    for body in settings.bodies:
        for row in await fixed_rate_rounds(procs, measured, body, settings):
            _print_progress("fixed rate", row)
            fixed.append(row)
    throughput = []
    for body in settings.bodies:
        for row in await throughput_runs(procs, measured, body, settings):
            _print_progress("throughput", row)
            throughput.append(row)
    slowest = knee(throughput, latency.body)
    loads = rates(latency, float(slowest["rps_median"]) if slowest else None)
    open_loop = await latency_runs(procs, topologies, loads, latency)
    notes.append(
        f"fixed rate: wrk -t1 -c{settings.rate_connections} paced to {settings.rate:g} req/s, "
        f"{settings.rate_rounds} x {settings.rate_seconds:g} s per topology, alternating "
        f"(latency: median over the rounds); throughput: wrk -t1 -c{settings.throughput_connections}, "
        f"{settings.throughput_runs} x {settings.throughput_seconds:g} s per topology, alternating; "
        f"proxies pinned to core {PROXY_CORE}, wrk and upstream nginx to core {LOAD_CORE}",
    )
    notes.append(
        f"open loop: bench/openloop.py, {latency.connections} connections, "
        f"{latency.seconds:g} s (+{latency.warmup:g} s unrecorded) per topology and load, "
        f"alternating, on core {LOAD_CORE}; knee = slowest proxy's closed-loop median "
        + (
            f"({slowest['proxy']} {slowest['path']} {latency.body}: {slowest['rps_median']:,} req/s)"
            if slowest
            else "(none measured: only the base rate)"
        )
    )
    notes.append(
        f"{TLS_PATH}: the sidecar-to-sidecar leg is mutual TLS 1.3, default suites, ECDSA P-256 "
        "(peers: a bench CA from bench/certs.py; gossamer: its mesh CA, mTLS strict)"
    )
    return {
        "settings": settings.__dict__,
        "fixed_rate": fixed,
        "throughput": throughput,
        "knee": slowest,
        "latency_settings": latency.__dict__,
        "open_loop": open_loop,
        "added_latency": added_over_direct(open_loop),
        "notes": notes,
    }


def _print_progress(measure: str, row: dict[str, Any]) -> None:
    hidden = ("proxy", "path", "body", "rps_all", "p99_ms_all")
    shown = {k: v for k, v in row.items() if k not in hidden}
    print(f"  {measure}: {row['proxy']} {row['path']} {row['body']}: {shown}", flush=True)
