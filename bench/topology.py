"""The paths a request takes: direct, one hop (outbound proxy), mesh (outbound + inbound).

Every proxy is started exactly the same way for each peer: one process (one worker or
thread) per sidecar, pinned to the proxy core; the upstream and load generator share the
other core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.certs import BenchCerts
from bench.peers import binary, haproxy_tls, nginx_tls, start_haproxy, start_nginx
from bench.procs import ProcessSet, Started

PATHS = ("one-hop", "mesh")
TLS_PATH = "mesh-tls"  # the mesh path with TLS 1.3 (mutual) between the two sidecars
PEERS = ("haproxy", "nginx")
SERVICE_HOST = "bench-app"  # the Host header every client sends (gossamer routes on it)


@dataclass
class Topology:
    proxy: str  # "direct" | "haproxy" | "nginx" | "gossamer"
    path: str  # "direct" | "one-hop" | "mesh"
    port: int  # where the load generator connects
    host: str = SERVICE_HOST
    proxies: list[Started] = field(default_factory=list)  # whose CPU and memory we measure

    @property
    def name(self) -> str:
        return "direct" if self.proxy == "direct" else f"{self.proxy} {self.path}"

    @property
    def proxy_pids(self) -> list[int]:
        return [p.pid for p in self.proxies]


def direct(upstream_port: int) -> Topology:
    return Topology("direct", "direct", upstream_port)


async def peer_topology(
    procs: ProcessSet,
    peer: str,
    path: str,
    upstream_port: int,
    core: int | None,
    certs: BenchCerts | None = None,
) -> Topology:
    """A sidecar pair of `peer` (HAProxy or nginx) configured like gossamer's; on TLS_PATH the
    leg between the two sidecars is mutual TLS 1.3 with `certs`."""
    tag = f"{peer}-{path}"
    next_port = upstream_port
    proxies: list[Started] = []
    tls = certs if path == TLS_PATH else None
    if path in ("mesh", TLS_PATH):
        inbound, next_port = await _start_peer(
            procs, peer, f"{tag}-inbound", next_port, core, _tls(peer, tls, "inbound")
        )
        proxies.append(inbound)
    outbound, port = await _start_peer(
        procs, peer, f"{tag}-outbound", next_port, core, _tls(peer, tls, "outbound")
    )
    proxies.insert(0, outbound)
    return Topology(peer, path, port, proxies=proxies)


def _tls(peer: str, certs: BenchCerts | None, side: str) -> dict[str, str]:
    return haproxy_tls(certs, side) if peer == "haproxy" else nginx_tls(certs, side)


async def _start_peer(
    procs: ProcessSet,
    peer: str,
    name: str,
    next_port: int,
    core: int | None,
    tls: dict[str, str],
) -> tuple[Started, int]:
    if peer == "haproxy":
        return await start_haproxy(procs, name, next_port, core, tls)
    if peer == "nginx":
        return await start_nginx(procs, name, "nginx_sidecar.conf", core, next_port, tls)
    raise ValueError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")


def available_peers() -> list[str]:
    return [peer for peer in PEERS if binary(peer) is not None]
