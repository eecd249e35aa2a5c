"""The benchmark harness works end to end: real processes, real sockets, tiny sizes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # bench/ is a top-level package of the repo, not installed


def _bench(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench", *args]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def test_quick_control_bench_writes_results(tmp_path: Path) -> None:
    done = subprocess.run(
        _bench("--quick", "--only", "control", "--out", str(tmp_path)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result_json,) = tmp_path.glob("*-quick.json")
    results = json.loads(result_json.read_text())
    measures = {m["measure"]: m["value"] for m in results["control"]["measures"]}
    assert any(name.startswith("change → last ACK") for name in measures), measures
    assert all(value is not None for value in measures.values()), measures
    assert "## Control plane" in (tmp_path / result_json.name.replace(".json", ".md")).read_text()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_ctrl_c_stops_every_process_the_bench_started(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        _bench("--quick", "--only", "dataplane", "--keep", "--out", str(tmp_path)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # The first measurement line means every topology is up and loaded once.
        for line in proc.stdout:
            if line.startswith("  fixed rate:"):
                break
        else:
            pytest.fail(
                f"bench ended before measuring: {proc.stderr.read() if proc.stderr else ''}"
            )
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    kept = stderr.split("work dir kept at ", 1)[1].split()[0]
    try:
        assert _processes_mentioning(kept) == []
    finally:
        shutil.rmtree(kept, ignore_errors=True)


# --- the open-loop generator against a real server ------------------------------------------


async def _serve(delay: float, status: int = 200) -> tuple[asyncio.Server, int]:
    """A keep-alive HTTP/1.1 server answering every request after `delay` seconds, in order."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = b"x" * 1024
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                if delay:
                    await asyncio.sleep(delay)  # the slow server under test, not a readiness wait
                writer.write(head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _openloop(port: int, *args: str) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        *_bench_module("bench.openloop", "--url", f"http://127.0.0.1:{port}/1k", "--host", "t"),
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-3000:]
    (line,) = [x for x in out.decode().splitlines() if x.startswith("OPENLOOP-JSON ")]
    return dict(json.loads(line.split(" ", 1)[1]))


def _bench_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


async def test_openloop_keeps_the_rate_on_a_fast_server() -> None:
    server, port = await _serve(0)
    async with server:
        result = await _openloop(port, "--rate", "400", "--duration", "1", "--warmup", "0.2")
    assert result["errors"] == {"status": 0, "socket": 0, "timeout": 0}
    assert result["completed"] == result["measured"] == 400
    service, latency = result["service_ms"], result["latency_ms"]
    assert isinstance(service, dict) and isinstance(latency, dict)
    assert 0 < service["p50"] <= service["p99"] <= service["p999"] <= service["max"]
    assert latency["p50"] >= service["p50"]  # from the due time, never shorter


async def test_openloop_counts_the_queueing_a_slow_server_causes() -> None:
    # 2 connections and 50 ms per response: at most 40 req/s, but 100 are due each second.
    # Service time stays ~50 ms; latency from the due time grows with the backlog.
    server, port = await _serve(0.05)
    async with server:
        result = await _openloop(
            port, "--rate", "100", "--duration", "1", "--warmup", "0", "--connections", "2"
        )
    service, latency = result["service_ms"], result["latency_ms"]
    assert isinstance(service, dict) and isinstance(latency, dict)
    assert service["p99"] < 200
    assert latency["p99"] > 500  # the last requests waited for the backlog ahead of them
    assert isinstance(result["queued"], int) and result["queued"] > 50


async def test_openloop_reports_non_2xx_as_errors() -> None:
    server, port = await _serve(0, status=503)
    async with server:
        result = await _openloop(port, "--rate", "200", "--duration", "0.5", "--warmup", "0")
    errors = result["errors"]
    assert isinstance(errors, dict) and errors["status"] == 100
    assert result["completed"] == 0


# --- pure pieces: the knee, the loads, what each proxy adds ----------------------------------


def _throughput(proxy: str, path: str, rps: float | None) -> dict[str, object]:
    return {"proxy": proxy, "path": path, "body": "1k", "rps_median": rps}


def test_knee_is_the_slowest_proxy_and_loads_follow_it() -> None:
    from bench.latency import FULL_LATENCY, knee, rates

    rows = [
        _throughput("direct", "direct", 900.0),  # no proxy: never the knee
        _throughput("haproxy", "mesh", 8000.0),
        _throughput("gossamer", "mesh-tls", 4000.0),
        _throughput("nginx", "mesh", None),  # every run failed
    ]
    slowest = knee(rows, "1k")
    assert slowest is not None and slowest["proxy"] == "gossamer"
    assert rates(FULL_LATENCY, 4000.0) == [
        ("1000 rps", 1000),
        ("25% of knee", 1000),
        ("50% of knee", 2000),
        ("75% of knee", 3000),
    ]
    assert rates(FULL_LATENCY, None) == [("1000 rps", 1000)]
    assert knee(rows, "64k") is None


def _open_row(proxy: str, load: str, p50: float, p99: float) -> dict[str, object]:
    ms = {"p50": p50, "p90": p50, "p99": p99, "p999": p99}
    return {
        "proxy": proxy,
        "path": "direct" if proxy == "direct" else "mesh",
        "body": "1k",
        "load": load,
        "rate": 1000,
        "failed": False,
        "service_ms": ms,
        "latency_ms": ms,
    }


def test_added_latency_is_the_proxy_minus_direct_at_the_same_load() -> None:
    from bench.chart import series
    from bench.latency import added_over_direct

    rows = [
        _open_row("direct", "a", 0.1, 0.5),
        _open_row("direct", "b", 0.2, 0.9),
        _open_row("gossamer", "a", 0.4, 0.7),
        _open_row("gossamer", "b", 0.5, 1.9),
    ]
    added = added_over_direct(rows)
    assert [(r["load"], r["service_p50"], r["service_p99"]) for r in added] == [
        ("a", 0.3, 0.2),
        ("b", 0.3, 1.0),
    ]
    assert list(series(added)) == ["gossamer mesh"]


def test_goals_report_the_figure_the_ratio_and_the_verdict() -> None:
    from bench.goals import goal_rows

    thru = [
        {"proxy": p, "path": "one-hop", "body": "1k", "rps_median": rps}
        for p, rps in (("gossamer", 6000.0), ("haproxy", 5000.0), ("nginx", 12000.0))
    ]
    fixed = [
        {"proxy": p, "path": "one-hop", "body": "1k", "cpu_us_per_req": cpu, "rss_idle_mib": rss}
        for p, cpu, rss in (
            ("gossamer", 120.0, 20.0),
            ("haproxy", 40.0, 10.0),
            ("nginx", 60.0, 10.0),
        )
    ]
    control = {
        "measures": [
            {"measure": "change → last ACK, 1000 subscribers, p99", "value": 400.0},
            {"measure": "memory per subscriber (1000)", "value": 0.6},
        ]
    }
    rows = goal_rows({"dataplane": {"throughput": thru, "fixed_rate": fixed}, "control": control})

    def row(text: str) -> dict[str, object]:
        (found,) = [r for r in rows if text in str(r["goal"])]
        return found

    throughput = row("throughput on one core")
    assert (throughput["ratio"], throughput["verdict"]) == ("1.20 / 0.50", "met")
    cpu = row("CPU per request per sidecar ≤ 100 µs (one-hop")
    assert (cpu["measured"], cpu["ratio"], cpu["verdict"]) == ("120 µs", "3.00 / 2.00", "not met")
    assert row("(mesh-tls, 1 KiB")["verdict"] == "not measured"  # no such row in this run
    rss = row("RSS of an idle sidecar")
    assert rss["verdict"] == "met" and rss["ratio"] == "2.00 / 2.00"  # 20 MiB = 21 MB
    assert row("change → last ACK, 1000 subscribers, p99")["verdict"] == "met"
    assert row("memory per subscriber")["verdict"] == "not met"  # 0.6 MiB = 0.63 MB
