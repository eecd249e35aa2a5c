"""The paths a request takes: direct, one hop (outbound proxy), mesh (outbound + inbound).

Every proxy is started exactly the same way for each peer: one process (one worker or
thread) per sidecar, pinned to the proxy core; the upstream and load generator share the
other core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.peers import binary, start_haproxy, start_nginx
from bench.procs import ProcessSet, Started

PATHS = ("one-hop", "mesh")
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
    procs: ProcessSet, peer: str, path: str, upstream_port: int, core: int | None
) -> Topology:
    """A sidecar pair of `peer` (HAProxy or nginx) configured like gossamer's."""
    tag = f"{peer}-{path}"
    next_port = upstream_port
    proxies: list[Started] = []
    if path == "mesh":
        inbound, next_port = await _start_peer(procs, peer, f"{tag}-inbound", next_port, core)
        proxies.append(inbound)
    outbound, port = await _start_peer(procs, peer, f"{tag}-outbound", next_port, core)
    proxies.insert(0, outbound)
    return Topology(peer, path, port, proxies=proxies)


async def _start_peer(
    procs: ProcessSet, peer: str, name: str, next_port: int, core: int | None
) -> tuple[Started, int]:
    if peer == "haproxy":
        return await start_haproxy(procs, name, next_port, core)
    if peer == "nginx":
        return await start_nginx(procs, name, "nginx_sidecar.conf", core, next_port)
    raise ValueError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")


def available_peers() -> list[str]:
    return [peer for peer in PEERS if binary(peer) is not None]
