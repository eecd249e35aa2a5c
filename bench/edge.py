"""The edge: `gossamer gateway` against HAProxy and nginx terminating TLS, same machine, same run.

    .venv/bin/python -m bench.edge [--seconds 5] [--runs 3] [--connections 32] [--json PATH]

Every client connection is keep-alive TLS (wrk, TLS 1.3, ECDSA P-256 server certificate from
bench/certs.py); the upstream is the suite's nginx serving /1k. Topologies:

  haproxy one-hop   wrk -TLS-> haproxy -> upstream
  nginx one-hop     wrk -TLS-> nginx   -> upstream
  gateway one-hop   wrk -TLS-> gossamer gateway -> upstream (an Instance; control plane
                    with mTLS off, so the leg behind the gateway is plain as for the peers)
  gateway mesh-tls  wrk -TLS-> gossamer gateway -mTLS-> inbound sidecar -> upstream (what
                    a mesh with mTLS strict runs: the gateway enters the mesh as its identity)

Proxies are pinned to the proxy core, wrk, the upstream and the control planes to the
load core (bench/dataplane.py). Runs alternate between topologies; a run with any socket
error or non-2xx answer is not counted. `run_edge` is the one entry point for the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.certs import BenchCerts, write_certs
from bench.control_plane import (
    PROXY_READY,
    ControlPlane,
    api,
    gossamer_cmd,
    ready_fields,
    start_control,
)
from bench.dataplane import LOAD_CORE, PROXY_CORE
from bench.load import run_wrk
from bench.peers import (
    BODY_SIZES,
    PLAIN_HAPROXY,
    PLAIN_NGINX,
    binary,
    prepare_workdir,
    start_haproxy,
    start_nginx,
    start_upstream,
)
from bench.procs import HarnessError, ProcessSet, Started
from bench.stats import median

HOST = "bench-app"  # the Host every client sends; the gateway's route has no hostnames
DIRECT = "bench-direct"  # the upstream itself, registered as this service's one Instance
GATEWAY_READY = (b"gossamer-gateway ready",)
BODY = "1k"


@dataclass(frozen=True)
class EdgeSettings:
    seconds: float = 5.0
    runs: int = 3
    connections: int = 32


@dataclass
class EdgeTopology:
    name: str
    url: str  # https://127.0.0.1:PORT/
    proxies: list[Started]


def _doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "gossamer.dev/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}  # fmt: skip


def gateway_documents(certs: BenchCerts, backend: str, upstream_port: int) -> list[dict[str, Any]]:
    """A Gateway with one HTTPS listener and a catch-all route to `backend`."""
    listener = {"name": "https", "port": 8443, "protocol": "HTTPS", "tls": {"certificateRefs": [
        {"kind": "File", "cert": str(certs.server_cert), "key": str(certs.server_key)}]}}  # fmt: skip
    docs = [
        _doc("Service", backend, {}),
        _doc("Gateway", "edge", {"listeners": [listener]}),
        _doc("HTTPRoute", "edge", {"parentRefs": [{"kind": "Gateway", "name": "edge"}],
                                   "rules": [{"backendRefs": [{"name": backend}]}]}),
    ]  # fmt: skip
    if backend == DIRECT:
        docs.append(_doc("Instance", f"{DIRECT}-upstream", {"service": DIRECT,
            "address": "127.0.0.1", "port": upstream_port, "leaseSeconds": 3600}))  # fmt: skip
    return docs


async def _token_env(control: ControlPlane, service: str) -> dict[str, str]:
    env = dict(os.environ)
    token = await control.sidecar_token(service)
    if token is not None:
        env["GOSSAMER_TOKEN"] = token  # in the environment, never on a command line
    return env


async def _gateway(
    procs: ProcessSet, certs: BenchCerts, upstream_port: int, mtls: str
) -> EdgeTopology:
    """A control plane (`mtls` mesh-wide), the gateway, and for strict an inbound sidecar."""
    control = await start_control(procs, LOAD_CORE, mtls=mtls, name=f"edge-control-{mtls}")
    backend = DIRECT if mtls == "disable" else HOST
    async with control.session() as session:
        body = {"documents": gateway_documents(certs, backend, upstream_port)}
        await api(session, "POST", f"{control.url}/api/v1/apply", body)
    proxies: list[Started] = []
    if backend == HOST:
        cmd = gossamer_cmd("proxy", "--service", HOST, "--app-port", str(upstream_port))
        cmd += ["--control", control.url, "--lease", "30s", "--id", "edge-inbound"]
        for flag in ("--outbound-port", "--inbound-port", "--stats-port", "--admin-port"):
            cmd += [flag, "0"]
        env = await _token_env(control, HOST)
        inbound, _ = await procs.start_ready(
            f"edge-inbound-{mtls}", cmd, PROXY_READY, core=PROXY_CORE, env=env
        )
        proxies.append(inbound)
    cmd = gossamer_cmd("gateway", "--name", "edge", "--address", "127.0.0.1")
    cmd += ["--control", control.url, "--listener-port", "https=0", "--stats-port", "0"]
    cmd += ["--access-log", "off", "--report-interval", "0", "--id", f"edge-{mtls}"]
    env = await _token_env(control, "edge")
    gateway, line = await procs.start_ready(
        f"edge-gateway-{mtls}", cmd, GATEWAY_READY, core=PROXY_CORE, env=env
    )
    port = ready_fields(line)["listener.https"]
    path = "one-hop" if mtls == "disable" else "mesh-tls"
    return EdgeTopology(f"gateway {path}", f"https://127.0.0.1:{port}/", [gateway, *proxies])


async def _peer(procs: ProcessSet, peer: str, certs: BenchCerts, upstream: int) -> EdgeTopology:
    """HAProxy or nginx terminating TLS (TLS 1.2+, no client certificates) in front of the
    upstream, configured as the suite's sidecars are (one worker, keep-alive both sides)."""
    if peer == "nginx":
        server = (
            f"ssl_certificate {certs.server_cert}; ssl_certificate_key {certs.server_key}; "
            "ssl_protocols TLSv1.2 TLSv1.3;"
        )
        tls = {**PLAIN_NGINX, "listen_tls": " ssl", "server_tls": server}
        started, port = await start_nginx(
            procs, "edge-nginx", "nginx_sidecar.conf", PROXY_CORE, upstream, tls
        )
    else:
        bind = f" ssl crt {certs.server_pem} alpn http/1.1 ssl-min-ver TLSv1.2"
        tls = {**PLAIN_HAPROXY, "bind_tls": bind}
        started, port = await start_haproxy(procs, "edge-haproxy", upstream, PROXY_CORE, tls)
    return EdgeTopology(f"{peer} one-hop", f"https://127.0.0.1:{port}/", [started])


async def _preflight(topology: EdgeTopology) -> None:
    async with httpx.AsyncClient(verify=False, timeout=10) as client:
        try:
            answer = await client.get(topology.url + BODY, headers={"Host": HOST})
        except httpx.HTTPError as exc:
            raise HarnessError(f"{topology.name}: GET /{BODY} failed: {exc!r}") from exc
    if answer.status_code != 200 or len(answer.content) != BODY_SIZES[BODY]:
        raise HarnessError(
            f"{topology.name}: GET /{BODY} gave {answer.status_code}, {len(answer.content)} "
            f"bytes: {answer.headers.get('x-gossamer-reason', '')} {answer.text[:200]!r}"
        )


async def run_edge(procs: ProcessSet, settings: EdgeSettings) -> dict[str, Any]:
    """Start every edge topology in `procs`, measure, and return rows with ratios."""
    prepare_workdir(procs.workdir)
    notes: list[str] = []
    _, upstream = await start_upstream(procs, LOAD_CORE)
    certs = write_certs(procs.workdir / "edge-tls")
    topologies = []
    for peer in ("haproxy", "nginx"):
        if binary(peer) is None:
            notes.append(f"{peer} is not installed: skipped (make system-deps)")
            continue
        topologies.append(await _peer(procs, peer, certs, upstream))
    for mtls in ("disable", "strict"):
        topologies.append(await _gateway(procs, certs, upstream, mtls))
    for topology in topologies:
        await _preflight(topology)
    samples: dict[str, list[tuple[float, float, float]]] = {t.name: [] for t in topologies}
    failed: dict[str, list[str]] = {t.name: [] for t in topologies}
    for _ in range(settings.runs):
        for topology in topologies:  # alternate: a noisy moment hits every topology alike
            result = await run_wrk(
                procs, topology.url + BODY, host=HOST, duration=settings.seconds,
                connections=settings.connections, core=LOAD_CORE,
            )  # fmt: skip
            if result.failed:
                failed[topology.name].append(result.describe_errors())
                continue
            lat = result.latency_ms
            samples[topology.name].append((result.rps, lat.get("p50", 0.0), lat.get("p99", 0.0)))
    rows = [_row(name, samples[name], failed[name]) for name in samples]
    for ref in ("haproxy", "nginx"):
        base = next((r["rps_median"] for r in rows if r["proxy"] == f"{ref} one-hop"), None)
        for row in rows:
            ratio = row["rps_median"] / base if base and row["rps_median"] else None
            row[f"rps_vs_{ref}"] = round(ratio, 2) if ratio is not None else None
    notes.append(
        f"wrk -t1 -c{settings.connections} over keep-alive TLS, /{BODY}, "
        f"{settings.runs} x {settings.seconds:g} s per topology, alternating; proxies on core "
        f"{PROXY_CORE}, wrk, upstream and control planes on core {LOAD_CORE}"
    )
    return {"settings": asdict(settings), "rows": rows, "notes": notes}


def _row(name: str, got: list[tuple[float, float, float]], failed: list[str]) -> dict[str, Any]:
    return {
        "proxy": name,
        "runs_ok": len(got),
        "runs_failed": failed,
        "rps_median": round(median([g[0] for g in got]), 1) if got else None,
        "p50_ms_median": round(median([g[1] for g in got]), 3) if got else None,
        "p99_ms_median": round(median([g[2] for g in got]), 3) if got else None,
    }


def render(report: dict[str, Any]) -> str:
    lines = [f"{'topology':20s} {'req/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} "
             f"{'vs haproxy':>10s} {'vs nginx':>9s}"]  # fmt: skip
    for r in report["rows"]:
        cells = [
            f"{r['rps_median']:10.0f}" if r["rps_median"] else f"{'-':>10s}",
            f"{r['p50_ms_median']:8.3f}" if r["p50_ms_median"] is not None else f"{'-':>8s}",
            f"{r['p99_ms_median']:8.3f}" if r["p99_ms_median"] is not None else f"{'-':>8s}",
            f"{r.get('rps_vs_haproxy') or '-':>10}",
            f"{r.get('rps_vs_nginx') or '-':>9}",
        ]
        lines.append(f"{r['proxy']:20s} " + " ".join(cells))
    return "\n".join([*lines, *(f"note: {n}" for n in report["notes"])])


async def _main(settings: EdgeSettings) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="gossamer-edge-bench-"))
    async with ProcessSet(workdir) as procs:
        return await run_edge(procs, settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.edge", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    ns = parser.parse_args(argv)
    report = asyncio.run(_main(EdgeSettings(ns.seconds, ns.runs, ns.connections)))
    print(render(report))
    if ns.json is not None:
        ns.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
