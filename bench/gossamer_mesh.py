"""gossamer's sidecar pair for the data-plane benchmark: a control plane and `gossamer proxy`s.

- one hop: client → outbound sidecar → upstream. The upstream is registered as the one
  Instance of service `bench-direct` (Host: bench-direct), so the sidecar sends straight to it.
- mesh: client → outbound sidecar → inbound sidecar → upstream (Host: bench-app); the
  inbound sidecar registers itself as `bench-app` with the upstream as its app.
- mesh-tls: the same with mTLS between the two sidecars (a second control plane, strict).
Each path gets its own outbound process, as the peers do, so memory compares like for like.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os

from bench.control_plane import (
    PROXY_READY,
    ControlPlane,
    api,
    gossamer_cmd,
    ready_fields,
    start_control,
)
from bench.procs import HarnessError, ProcessSet, Started
from bench.topology import SERVICE_HOST, TLS_PATH, Topology

DIRECT_SERVICE = "bench-direct"


def unavailable() -> str | None:
    """Why gossamer's pieces cannot run here (None when they can)."""
    for module in ("gossamer.proxy.runtime", "gossamer.proxy.dataplane", "gossamer.control.server"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not there yet"
    return None


def _declarations(upstream_port: int) -> list[dict[str, object]]:
    def service(name: str) -> dict[str, object]:
        return {
            "apiVersion": "gossamer.dev/v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {},
        }

    instance: dict[str, object] = {
        "apiVersion": "gossamer.dev/v1",
        "kind": "Instance",
        "metadata": {"name": f"{DIRECT_SERVICE}-upstream", "namespace": "default"},
        "spec": {
            "service": DIRECT_SERVICE,
            "address": "127.0.0.1",
            "port": upstream_port,
            "leaseSeconds": 3600,
        },
    }
    return [service(SERVICE_HOST), service(DIRECT_SERVICE), instance]


async def _start_proxy(
    procs: ProcessSet,
    name: str,
    service: str,
    app_port: int,
    control: ControlPlane,
    core: int | None,
) -> tuple[Started, dict[str, str]]:
    cmd = gossamer_cmd("proxy", "--service", service, "--app-port", str(app_port))
    cmd += ["--control", control.url, "--lease", "30s", "--id", name]
    for flag in ("--outbound-port", "--inbound-port", "--stats-port", "--admin-port"):
        cmd += [flag, "0"]
    env = dict(os.environ)
    token = await control.sidecar_token(service)
    if token is not None:
        env["GOSSAMER_TOKEN"] = token  # in the environment, never on a command line
    started, line = await procs.start_ready(name, cmd, PROXY_READY, core=core, env=env)
    return started, ready_fields(line)


async def _control_with_services(
    procs: ProcessSet, upstream_port: int, core: int | None, mtls: str
) -> ControlPlane:
    control = await start_control(procs, core, mtls=mtls, name=f"control-{mtls}")
    async with control.session() as session:
        body = {"documents": _declarations(upstream_port)}
        await api(session, "POST", f"{control.url}/api/v1/apply", body)
    return control


async def _refuses_plaintext(port: int) -> None:
    """The strict inbound sidecar must not serve plain HTTP: then every request the mesh-tls
    path carries crossed the sidecar-to-sidecar leg over mTLS."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /1k HTTP/1.1\r\nHost: {SERVICE_HOST}\r\n\r\n".encode())
        await writer.drain()
        async with asyncio.timeout(10):
            head = await reader.read(64)
    except (OSError, TimeoutError):
        head = b""
    finally:
        writer.close()
    if head.startswith(b"HTTP/1.1 2"):
        raise HarnessError(f"the strict inbound sidecar served plaintext: {head!r}")


async def start(
    procs: ProcessSet, upstream_port: int, proxy_core: int | None, control_core: int | None
) -> list[Topology]:
    """Plain one hop and mesh from a control plane with mTLS off; the mesh with mTLS (strict,
    the default) from a second one, so every other setting stays the same."""
    plain = await _control_with_services(procs, upstream_port, control_core, "disable")
    # The client-side sidecars need an app to probe too: the upstream stands in for it.
    inbound, _ = await _start_proxy(
        procs, "bench-app-inbound", SERVICE_HOST, upstream_port, plain, proxy_core
    )
    hop, hop_ports = await _start_proxy(
        procs, "bench-client-onehop", "bench-client", upstream_port, plain, proxy_core
    )
    out, out_ports = await _start_proxy(
        procs, "bench-client-mesh", "bench-client", upstream_port, plain, proxy_core
    )
    strict = await _control_with_services(procs, upstream_port, control_core, "strict")
    tls_in, tls_in_ports = await _start_proxy(
        procs, "bench-app-inbound-mtls", SERVICE_HOST, upstream_port, strict, proxy_core
    )
    tls_out, tls_ports = await _start_proxy(
        procs, "bench-client-mesh-mtls", "bench-client", upstream_port, strict, proxy_core
    )
    await _refuses_plaintext(int(tls_in_ports["inbound"]))
    return [
        Topology("gossamer", "one-hop", int(hop_ports["outbound"]), DIRECT_SERVICE, [hop]),
        Topology("gossamer", "mesh", int(out_ports["outbound"]), SERVICE_HOST, [out, inbound]),
        Topology("gossamer", TLS_PATH, int(tls_ports["outbound"]), SERVICE_HOST, [tls_out, tls_in]),
    ]
