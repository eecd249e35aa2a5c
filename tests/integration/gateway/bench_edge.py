"""Gateway vs HAProxy and nginx terminating TLS, same machine, same run (not a test: run it by hand).

    .venv/bin/python tests/integration/gateway/bench_edge.py [--seconds 5] [--connections 32]

Upstream: nginx answering a small static body. Paths measured with wrk over keep-alive TLS:
  haproxy   wrk -TLS-> haproxy -> nginx                               (one hop)
  nginx     wrk -TLS-> nginx (proxy) -> nginx                         (one hop)
  gateway   wrk -TLS-> gossamer gateway -mTLS-> sidecar -> nginx       (the mesh path: two hops)
  sidecar   wrk -> sidecar outbound -mTLS-> sidecar -> nginx           (reference: the mesh hop)
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proxy"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from gwkit import CA
from helpers import GOSSAMER, Procs, free_port

NGINX_CONF = """
daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;
events {{ worker_connections 1024; }}
http {{ access_log off;
  upstream app {{ server 127.0.0.1:{port}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port}; keepalive_requests 100000;
    location / {{ default_type text/plain; return 200 "ok\\n"; }} }}
  server {{ listen 127.0.0.1:{tls_port} ssl; keepalive_requests 100000;
    ssl_certificate {cert}; ssl_certificate_key {key};
    location / {{ proxy_pass http://app; proxy_http_version 1.1;
                  proxy_set_header Connection ""; }} }} }}
"""
HAPROXY_CONF = """
global
  maxconn 4096
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend edge
  bind 127.0.0.1:{port} ssl crt {pem} alpn http/1.1
  default_backend app
backend app
  http-reuse always
  server nginx 127.0.0.1:{upstream}
"""


def wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", "Host: bench.example.com", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "--debug" in sys.argv:
        print(out)
    found = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    assert found, out
    return float(found.group(1))


async def main(seconds: int, connections: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    procs = Procs(tmp)
    ca = CA()
    ca.issue("bench.example.com", tmp / "edge.crt", tmp / "edge.key")
    (tmp / "edge.pem").write_bytes(
        (tmp / "edge.crt").read_bytes() + (tmp / "edge.key").read_bytes()
    )
    nginx_port, haproxy_port, nginx_tls_port = free_port(), free_port(), free_port()
    (tmp / "nginx.conf").write_text(
        NGINX_CONF.format(
            tmp=tmp,
            port=nginx_port,
            tls_port=nginx_tls_port,
            cert=tmp / "edge.crt",
            key=tmp / "edge.key",
        )
    )
    (tmp / "haproxy.cfg").write_text(
        HAPROXY_CONF.format(port=haproxy_port, pem=tmp / "edge.pem", upstream=nginx_port)
    )
    try:
        await procs.spawn("nginx", ["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp)])
        await procs.spawn("haproxy", ["haproxy", "-f", str(tmp / "haproxy.cfg")])
        control = await procs.control()
        cport = control.port("port")
        ctl = f"http://127.0.0.1:{cport}"
        app = await procs.spawn("web", [*GOSSAMER, "proxy", "--service", "web",
            "--app-port", str(nginx_port), "--control", ctl, "--outbound-port", "0",
            "--inbound-port", "0", "--stats-port", "0", "--admin-port", "0",
            "--upstream", f"web={free_port()}"])  # fmt: skip
        ready = await app.wait_ready(b"gossamer-proxy ready")
        docs = [
            {"apiVersion": "gossamer.dev/v1", "kind": "Gateway", "metadata": {"name": "edge"},
             "spec": {"listeners": [{"name": "https", "port": 8443, "protocol": "HTTPS",
                      "tls": {"certificateRefs": [{"cert": str(tmp / "edge.crt"),
                                                   "key": str(tmp / "edge.key")}]}}]}},
            {"apiVersion": "gossamer.dev/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
             "spec": {"parentRefs": [{"kind": "Gateway", "name": "edge"}],
                      "rules": [{"backendRefs": [{"name": "web"}]}]}},
        ]  # fmt: skip
        async with aiohttp.ClientSession(ctl, headers=control.auth_headers()) as http:
            resp = await http.post("/api/v1/apply", json={"documents": docs})
            assert resp.status == 200, await resp.text()
        gw = await procs.spawn("gateway", [*GOSSAMER, "gateway", "--name", "edge",
            "--address", "127.0.0.1", "--control", ctl, "--listener-port", "https=0",
            "--stats-port", "0", "--access-log", "off", "--report-interval", "0"])  # fmt: skip
        await gw.wait_ready(b"gossamer-gateway ready")
        results = {
            "haproxy (TLS, 1 hop)": wrk(f"https://127.0.0.1:{haproxy_port}/", seconds, connections),
            "nginx (TLS, 1 hop)": wrk(f"https://127.0.0.1:{nginx_tls_port}/", seconds, connections),
            "gateway (TLS + mTLS hop)": wrk(
                f"https://127.0.0.1:{gw.port('listener.https')}/", seconds, connections
            ),
            "sidecar upstream (mTLS hop)": wrk(
                f"http://127.0.0.1:{ready['upstream.default/web']}/", seconds, connections
            ),
        }
        base = results["haproxy (TLS, 1 hop)"]
        for name, rps in results.items():
            print(f"{name:32s} {rps:10.0f} req/s   {rps / base:5.2f}x haproxy")
    finally:
        await procs.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--debug", action="store_true")
    ns = parser.parse_args()
    asyncio.run(main(ns.seconds, ns.connections))
