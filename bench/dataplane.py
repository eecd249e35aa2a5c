"""Data-plane benchmark: cost per request and latency at a fixed rate, then max throughput."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.load import WrkResult, run_wrk
from bench.procs import ProcessSet, process_tree, tree_cpu_seconds, tree_rss_mib
from bench.stats import median
from bench.topology import Topology

PROXY_CORE = 0  # every proxy process
LOAD_CORE = 1  # wrk and the upstream


@dataclass(frozen=True)
class DataplaneSettings:
    bodies: tuple[str, ...]
    rate: float  # fixed-rate load, requests/s
    rate_seconds: float
    rate_rounds: int
    rate_connections: int
    throughput_runs: int
    throughput_seconds: float
    throughput_connections: int
    # Topologies the wrk stages measure (None: all). Every topology is still started and
    # checked, and the open loop runs on all of them.
    wrk_topologies: tuple[str, ...] | None = None


FULL = DataplaneSettings(("1k", "64k"), 1000, 6, 2, 20, 5, 3, 32)
# The harness check: wrk's paths are the same for every proxy, so three topologies do (no
# proxy, a multi-process peer over TLS, gossamer over mTLS).
QUICK = DataplaneSettings(
    ("1k",), 1000, 1, 1, 20, 1, 1, 16, ("direct", "nginx mesh-tls", "gossamer mesh-tls")
)


def _url(topology: Topology, body: str) -> str:
    return f"http://127.0.0.1:{topology.port}/{body}"


async def _sample_rss(pids: Sequence[int], stop: asyncio.Event, peak: list[float]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], tree_rss_mib(pids))
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass


async def _loaded_run(
    procs: ProcessSet,
    topology: Topology,
    body: str,
    *,
    duration: float,
    connections: int,
    rate: float | None = None,
) -> tuple[WrkResult, float, float, float]:
    """One wrk run; returns it with proxy CPU seconds, peak RSS (MiB) and wall seconds."""
    pids = _tree(topology.proxy_pids)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    peak = [tree_rss_mib(pids)]
    cpu_before, wall_before = tree_cpu_seconds(pids), loop.time()
    async with asyncio.TaskGroup() as group:
        group.create_task(_sample_rss(pids, stop, peak))
        try:
            result = await run_wrk(
                procs,
                _url(topology, body),
                host=topology.host,
                duration=duration,
                connections=connections,
                rate=rate,
                core=LOAD_CORE,
            )
        finally:
            stop.set()
    cpu = tree_cpu_seconds(pids) - cpu_before
    return result, cpu, peak[0], loop.time() - wall_before


@dataclass
class _FixedRateRuns:
    """One topology's fixed-rate runs, summed (CPU, requests) or taken as medians (latency)."""

    idle_rss: float
    requests: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    peak_rss: float = 0.0
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    p999: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, result: WrkResult, cpu: float, peak_rss: float) -> None:
        if result.failed:
            self.errors.append(result.describe_errors())
            return
        self.requests += result.requests
        self.seconds += result.duration_s
        self.cpu += cpu
        self.peak_rss = max(self.peak_rss, peak_rss)
        self.p50.append(result.latency_ms["p50"])
        self.p99.append(result.latency_ms["p99"])
        self.p999.append(result.latency_ms["p999"])


async def fixed_rate_rounds(
    procs: ProcessSet, topologies: Sequence[Topology], body: str, settings: DataplaneSettings
) -> list[dict[str, object]]:
    """Paced runs, `rate_rounds` per topology, alternating: cost per request over all of
    them, latency percentiles as the median over the rounds (robust to a noisy neighbour)."""
    runs = {t.name: _FixedRateRuns(idle_rss=tree_rss_mib(_tree(t.proxy_pids))) for t in topologies}
    for _ in range(settings.rate_rounds):
        for topology in topologies:
            result, cpu, peak_rss, _ = await _loaded_run(
                procs,
                topology,
                body,
                duration=settings.rate_seconds,
                connections=settings.rate_connections,
                rate=settings.rate,
            )
            runs[topology.name].add(result, cpu, peak_rss)
    return [_fixed_rate_row(t, body, settings, runs[t.name]) for t in topologies]


def loaded_pids(topology: Topology) -> list[int]:
    """Every process of the topology's sidecars (nginx workers, taskset's children)."""
    return _tree(topology.proxy_pids)


def _tree(roots: Sequence[int]) -> list[int]:
    return [pid for root in roots for pid in process_tree(root)]


def _fixed_rate_row(
    topology: Topology, body: str, settings: DataplaneSettings, runs: _FixedRateRuns
) -> dict[str, object]:
    has_proxy = bool(topology.proxy_pids)
    ok = runs.requests > 0

    def ms(values: list[float]) -> float | None:
        return round(median(values), 3) if values else None

    return {
        "proxy": topology.proxy,
        "path": topology.path,
        "body": body,
        "rounds": settings.rate_rounds,
        "requests": runs.requests,
        "failed": bool(runs.errors),
        "error": "; ".join(runs.errors) or None,
        "target_rps": settings.rate,
        "achieved_rps": round(runs.requests / runs.seconds, 1) if ok else None,
        "cpu_us_per_req": round(runs.cpu / runs.requests * 1e6, 1) if has_proxy and ok else None,
        "rss_idle_mib": round(runs.idle_rss, 1) if has_proxy else None,
        "rss_load_mib": round(runs.peak_rss, 1) if has_proxy and ok else None,
        "p50_ms": ms(runs.p50),
        "p99_ms": ms(runs.p99),
        "p999_ms": ms(runs.p999),
        "p99_ms_all": [round(v, 3) for v in runs.p99],
    }


async def throughput_runs(
    procs: ProcessSet, topologies: Sequence[Topology], body: str, settings: DataplaneSettings
) -> list[dict[str, object]]:
    """Closed-loop runs, alternating between topologies so drift hits all of them alike."""
    runs: dict[str, list[dict[str, object]]] = {t.name: [] for t in topologies}
    for _ in range(settings.throughput_runs):
        for topology in topologies:
            result, cpu, _, wall = await _loaded_run(
                procs,
                topology,
                body,
                duration=settings.throughput_seconds,
                connections=settings.throughput_connections,
            )
            run = _row(topology, body, result)
            run["rps"] = round(result.rps, 1)
            run["proxy_cpu_util"] = round(cpu / wall, 2) if topology.proxy_pids else None
            run["cpu_us_per_req"] = (
                round(cpu / result.requests * 1e6, 1)
                if topology.proxy_pids and result.requests
                else None
            )
            run["p50_ms"] = round(result.latency_ms["p50"], 3)
            run["p99_ms"] = round(result.latency_ms["p99"], 3)
            runs[topology.name].append(run)
    return [_summarise(t, body, runs[t.name]) for t in topologies]


def _summarise(topology: Topology, body: str, runs: list[dict[str, object]]) -> dict[str, object]:
    good = [float(r["rps"]) for r in runs if not r["failed"]]  # type: ignore[arg-type]
    utils = [
        float(r["proxy_cpu_util"])  # type: ignore[arg-type]
        for r in runs
        if not r["failed"] and r["proxy_cpu_util"] is not None
    ]
    costs = [
        float(r["cpu_us_per_req"])  # type: ignore[arg-type]
        for r in runs
        if not r["failed"] and r["cpu_us_per_req"] is not None
    ]
    failures = [str(r["error"]) for r in runs if r["failed"]]
    return {
        "proxy": topology.proxy,
        "path": topology.path,
        "body": body,
        "runs": len(runs),
        "failed_runs": len(failures),
        "failed": bool(failures),
        "errors": failures,
        "rps_median": round(median(good), 1) if good else None,
        "rps_min": round(min(good), 1) if good else None,
        "rps_max": round(max(good), 1) if good else None,
        "proxy_cpu_util_median": round(median(utils), 2) if utils else None,
        "cpu_us_per_req_median": round(median(costs), 1) if costs else None,
        "rps_all": [r["rps"] for r in runs],
    }


def _row(topology: Topology, body: str, result: WrkResult) -> dict[str, object]:
    return {
        "proxy": topology.proxy,
        "path": topology.path,
        "body": body,
        "requests": result.requests,
        "failed": result.failed,
        "error": result.describe_errors() if result.failed else None,
    }
