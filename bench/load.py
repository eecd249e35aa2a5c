"""Load generation with wrk: closed loop (max throughput) or paced (fixed rate)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from bench.procs import ProcessSet

LUA = Path(__file__).parent / "lua"
JSON_PREFIX = "BENCH-JSON "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def failed(self) -> bool:
        """Any socket error or non-2xx/3xx response: the run must not be counted."""
        return self.requests == 0 or any(self.errors.values())

    def describe_errors(self) -> str:
        bad = {name: count for name, count in self.errors.items() if count}
        return ", ".join(f"{name}={count}" for name, count in bad.items()) or "no requests"


def parse_wrk_output(stdout: str) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith(JSON_PREFIX):
            data = json.loads(line[len(JSON_PREFIX) :])
            return WrkResult(
                requests=int(data["requests"]),
                duration_s=data["duration_us"] / 1e6,
                errors={k: int(v) for k, v in data["errors"].items()},
                latency_ms={k: v / 1000 for k, v in data["latency_us"].items()},
            )
    raise ValueError(f"wrk printed no result line:\n{stdout[-2000:]}")


def paced_delay_ms(rate: float, connections: int) -> int:
    """Per-connection pause giving about `rate` requests/s over `connections` connections.

    Each cycle is the pause plus the response time plus wrk's timer slack (about 1-2 ms on
    a sub-millisecond path), so the pause is 1 ms shorter than the ideal period."""
    return max(1, round(connections * 1000 / rate) - 1)


def _script(procs: ProcessSet, paced: bool) -> Path:
    name = "wrk-paced.lua" if paced else "wrk-closed.lua"
    path = procs.workdir / name
    if not path.exists():
        head = (LUA / "paced.lua").read_text() if paced else ""
        path.write_text(head + (LUA / "report.lua").read_text())
    return path


async def run_wrk(
    procs: ProcessSet,
    url: str,
    *,
    host: str,
    duration: float,
    connections: int,
    rate: float | None = None,
    core: int | None = None,
) -> WrkResult:
    """Run wrk once against `url`; `rate` set means paced (fixed rate), else closed loop."""
    script = _script(procs, paced=rate is not None)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "2s"]
    cmd += ["-H", f"Host: {host}", "-s", str(script), url]
    if rate is not None:
        cmd += ["--", str(paced_delay_ms(rate, connections))]
    started = await procs.start("wrk", cmd, core=core, stdout_pipe=True)
    assert started.proc.stdout is not None
    try:
        out = await asyncio.wait_for(started.proc.stdout.read(), duration + 30)
        await started.proc.wait()
    finally:
        await procs.stop(started)
    if started.proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {started.proc.returncode}: {started.log_tail()}")
    return parse_wrk_output(out.decode(errors="replace"))
