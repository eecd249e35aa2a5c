"""`python -m bench`: run the suite, print the tables, write bench/results/<date>-<host>.*"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import report
from bench.dataplane import FULL, QUICK
from bench.latency import FULL_LATENCY, QUICK_LATENCY
from bench.procs import HarnessError, ProcessSet, cpu_count
from bench.suite import run_dataplane

RESULTS = Path(__file__).parent / "results"


def _version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=False)
    except OSError:
        return "missing"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _module_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{name} {version(name)}"
    except PackageNotFoundError:
        return f"{name} missing"


def _meta(quick: bool) -> dict[str, Any]:
    commit = _version(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"])
    peers = {
        "haproxy": _version(["haproxy", "-v"]).split(" - ")[0],
        "nginx": _version(["nginx", "-v"]),
        "wrk": _version(["wrk", "-v"]).split(" Copyright")[0],
        "openssl": _version(["openssl", "version"]),
        "python": f"Python {platform.python_version()}",
        "python_packages": ", ".join(
            _module_version(m) for m in ("uvloop", "httptools", "cryptography", "hdrhistogram")
        ),
    }
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ"),
        "host": socket.gethostname(),
        "cpus": cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "quick": quick,
        "commit": commit,
        "peers": peers,
        "versions": "; ".join(peers.values()),
        # gossamer's processes inherit it (python -O: asserts off)
        "pythonoptimize": os.environ.get("PYTHONOPTIMIZE") or None,
    }


async def _run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"meta": _meta(args.quick)}
    if args.only in (None, "dataplane"):
        print("data plane:", flush=True)
        async with ProcessSet(workdir / "dataplane") as procs:
            atexit.register(procs.kill_now)  # if the loop dies before the `async with` ends
            settings, latency = (QUICK, QUICK_LATENCY) if args.quick else (FULL, FULL_LATENCY)
            results["dataplane"] = await run_dataplane(procs, settings, latency)
    if args.only in (None, "control"):
        from bench.control import run_control

        print("control plane:", flush=True)
        async with ProcessSet(workdir / "control") as procs:
            atexit.register(procs.kill_now)
            results["control"] = await run_control(procs, quick=args.quick)
    if args.only in (None, "edge"):
        from bench.edge import EdgeSettings, render, run_edge

        print("edge (gateway vs HAProxy and nginx terminating TLS):", flush=True)
        async with ProcessSet(workdir / "edge") as procs:
            atexit.register(procs.kill_now)
            edge = EdgeSettings(seconds=1.0, runs=1) if args.quick else EdgeSettings()
            results["edge"] = await run_edge(procs, edge)
        print(render(results["edge"]), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny runs: checks the harness")
    parser.add_argument("--only", choices=("dataplane", "control", "edge"))
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None and args.only != "control":
        print("wrk is not installed (make system-deps)", file=sys.stderr)
        return 2
    missing = [tool for tool in ("haproxy", "nginx", "h2load") if not _installed(tool)]
    if missing:
        print(
            f"bench: not installed: {', '.join(missing)} (make system-deps installs them as "
            "root: apt-get install haproxy nginx-light wrk nghttp2-client); a missing peer "
            "is skipped",
            file=sys.stderr,
        )
    workdir = Path(tempfile.mkdtemp(prefix="gossamer-bench-"))
    workdir.chmod(0o755)  # nginx workers run unprivileged when the bench runs as root
    try:
        results = asyncio.run(_run(args, workdir))
    except HarnessError as exc:
        print(f"bench: harness broken: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"bench: work dir kept at {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    json_path, md_path = report.write(results, args.out)
    print()
    print(report.markdown(results))
    png = report.chart(results, md_path.with_suffix(".png"))
    print(f"results: {json_path} {md_path}" + (f" {png}" if png else " (no matplotlib: no chart)"))
    failures = _failures(results)
    for failure in failures:
        print(f"bench: FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


def _installed(tool: str) -> bool:
    return shutil.which(tool) is not None or Path("/usr/sbin", tool).exists()


def _failures(results: dict[str, Any]) -> list[str]:
    out = []
    dataplane = results.get("dataplane") or {}
    for measure in ("fixed_rate", "throughput", "open_loop"):
        for row in dataplane.get(measure, []):
            if row.get("failed"):
                errors = row.get("error") or row.get("errors")
                out.append(f"{measure} {row['proxy']} {row['path']} {row['body']}: {errors}")
    control = results.get("control") or {}
    out += [f"control: {problem}" for problem in control.get("failures", [])]
    for row in (results.get("edge") or {}).get("rows", []):
        out += [f"edge {row['proxy']}: {errors}" for errors in row["runs_failed"]]
    return out


if __name__ == "__main__":
    sys.exit(main())
