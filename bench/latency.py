"""Latency at fixed rates, open loop: 1,000 req/s and 25/50/75 % of the slowest proxy's knee.

The knee is the lowest closed-loop max throughput (median) of any proxy topology in the same
run. Each rate runs every topology once, alternating, with our generator (bench/openloop.py)
pinned to the load core. What each proxy adds is its percentile minus direct's at the same
rate (the generator's own error is in both, so it cancels to first order).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped, unused-ignore]

from bench.dataplane import LOAD_CORE, loaded_pids
from bench.openloop import LATE_FRACTION, summary
from bench.procs import HarnessError, ProcessSet, tree_cpu_seconds
from bench.topology import Topology

JSON_PREFIX = "OPENLOOP-JSON "
PERCENTILE_KEYS = ("p50", "p90", "p99", "p999")


@dataclass(frozen=True)
class LatencySettings:
    body: str
    base_rate: float  # the goal's rate, req/s
    knee_fractions: tuple[float, ...]
    seconds: float  # recorded, per round
    warmup: float
    connections: int
    rounds: int  # per topology and load, alternating; histograms merged over the rounds


FULL_LATENCY = LatencySettings("1k", 1000, (0.25, 0.5, 0.75), 2.5, 0.5, 100, 3)
QUICK_LATENCY = LatencySettings("1k", 1000, (), 0.3, 0.1, 32, 1)  # harness check: base rate


def knee(throughput_rows: Sequence[dict[str, Any]], body: str) -> dict[str, Any] | None:
    """The slowest proxy topology's closed-loop median for `body` (None without any)."""
    rows = [
        r
        for r in throughput_rows
        if r["proxy"] != "direct" and r["body"] == body and r.get("rps_median")
    ]
    return min(rows, key=lambda r: float(r["rps_median"])) if rows else None


def rates(settings: LatencySettings, knee_rps: float | None) -> list[tuple[str, float]]:
    """(label, req/s) to run, lowest first; without a knee only the base rate."""
    out = [(f"{settings.base_rate:g} rps", settings.base_rate)]
    if knee_rps:
        for fraction in settings.knee_fractions:
            out.append((f"{fraction:.0%} of knee", round(knee_rps * fraction)))
    return sorted(out, key=lambda item: item[1])


def added_over_direct(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each proxy row's percentiles minus direct's at the same load (ms); pure."""
    direct = {r["load"]: r for r in rows if r["proxy"] == "direct" and not r["failed"]}
    out = []
    for row in rows:
        base = direct.get(row["load"])
        if row["proxy"] == "direct" or base is None or row["failed"]:
            continue
        added: dict[str, Any] = {k: row[k] for k in ("proxy", "path", "body", "load", "rate")}
        for kind in ("service_ms", "latency_ms"):
            for key in PERCENTILE_KEYS:
                added[f"{kind[:-3]}_{key}"] = round(row[kind][key] - base[kind][key], 3)
        out.append(added)
    return out


async def run_generator(
    procs: ProcessSet, topology: Topology, body: str, rate: float, settings: LatencySettings
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.openloop", "--url"]
    cmd += [f"http://127.0.0.1:{topology.port}/{body}", "--host", topology.host]
    cmd += ["--rate", str(rate), "--duration", str(settings.seconds)]
    cmd += ["--warmup", str(settings.warmup), "--connections", str(settings.connections)]
    started = await procs.start("openloop", cmd, core=LOAD_CORE, stdout_pipe=True)
    assert started.proc.stdout is not None
    try:
        out = await asyncio.wait_for(started.proc.stdout.read(), settings.seconds + 60)
        await started.proc.wait()
    finally:
        await procs.stop(started)
    for line in out.decode(errors="replace").splitlines():
        if line.startswith(JSON_PREFIX):
            return dict(json.loads(line[len(JSON_PREFIX) :]))
    raise HarnessError(f"open-loop generator gave no result:\n{started.log_tail()}")


@dataclass
class _Rounds:
    """One topology's rounds at one load: merged histograms and summed counters."""

    hists: dict[str, HdrHistogram] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"completed": 0, "queued": 0, "late": 0, "measured": 0}
    )
    errors: dict[str, int] = field(default_factory=lambda: {"status": 0, "socket": 0, "timeout": 0})
    cpu: float = 0.0
    p99_rounds: list[float] = field(default_factory=list)

    def add(self, result: dict[str, Any], cpu: float) -> None:
        for kind, encoded in result["encoded"].items():
            hist = HdrHistogram.decode(encoded)
            if kind in self.hists:
                self.hists[kind].add(hist)
            else:
                self.hists[kind] = hist
        for key in self.counts:
            self.counts[key] += int(result[key])
        for key in self.errors:
            self.errors[key] += int(result["errors"][key])
        self.cpu += cpu
        self.p99_rounds.append(result["service_ms"]["p99"])


async def latency_runs(
    procs: ProcessSet,
    topologies: Sequence[Topology],
    loads: Sequence[tuple[str, float]],
    settings: LatencySettings,
) -> list[dict[str, Any]]:
    rows = []
    for label, rate in loads:
        runs = {t.name: _Rounds() for t in topologies}
        for _ in range(settings.rounds):
            for topology in topologies:
                pids = loaded_pids(topology)
                cpu_before = tree_cpu_seconds(pids)
                result = await run_generator(procs, topology, settings.body, rate, settings)
                runs[topology.name].add(result, tree_cpu_seconds(pids) - cpu_before)
        for topology in topologies:
            row = _row(topology, label, rate, settings, runs[topology.name])
            print(
                f"  open loop {label} ({rate:g}/s): {topology.name}: service "
                f"p50 {row['service_ms']['p50']} p99 {row['service_ms']['p99']} ms, from due "
                f"p99 {row['latency_ms']['p99']} ms, schedule kept {row['schedule_kept']}"
                + (f", {row['error']}" if row["error"] else ""),
                flush=True,
            )
            rows.append(row)
    return rows


def _row(
    topology: Topology, label: str, rate: float, settings: LatencySettings, runs: _Rounds
) -> dict[str, Any]:
    errors, counts = runs.errors, runs.counts
    # Timeouts at a high load are a finding, not a broken harness.
    failed = bool(errors["status"] or errors["socket"]) or not counts["completed"]
    sent = rate * (settings.seconds + settings.warmup) * settings.rounds
    late_fraction = counts["late"] / counts["measured"] if counts["measured"] else 1.0
    return {
        "proxy": topology.proxy,
        "path": topology.path,
        "body": settings.body,
        "load": label,
        "rate": rate,
        "rounds": settings.rounds,
        "failed": failed,
        "error": _describe(errors) if failed or errors["timeout"] else None,
        "cpu_us_per_req": round(runs.cpu / sent * 1e6, 1) if topology.proxy_pids else None,
        "achieved_rps": round(counts["completed"] / (settings.seconds * settings.rounds), 1),
        **counts,
        "schedule_kept": late_fraction <= LATE_FRACTION,
        **{f"{kind}_ms": summary(hist) for kind, hist in runs.hists.items()},
        "service_p99_ms_rounds": runs.p99_rounds,
    }


def _describe(errors: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in errors.items() if v) or "no responses"
