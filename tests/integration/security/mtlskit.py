"""Two in-process data planes with mTLS on real loopback sockets: a client sidecar ("web")
whose outbound reaches a server sidecar ("reviews") whose inbound forwards to a tiny app.
Certificates come from a real MeshCA; tests swap in bad ones."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gossamer.control.ca import MeshCA, spiffe_id
from gossamer.proxy.dataplane import DataPlane
from gossamer.proxy.http.exchange import Exchange
from gossamer.proxy.identity import WorkloadIdentity
from gossamer.proxy.mtls import TLS_MODE_LABEL, MeshSecurity
from gossamer.proxy.snapshot import Snapshot
from gossamer.proxy.state import SnapshotHolder
from gossamer.proxy.telemetry.stats import Stats
from gossamer.proxy.tls import MeshTLS

TD = "cluster.local"
WEB = spiffe_id(TD, "default", "web")
REVIEWS = spiffe_id(TD, "default", "reviews")
FAR = time.time() + 3600


@dataclass
class Material:
    chain: bytes
    key: bytes
    bundle: bytes

    def tls(self) -> MeshTLS:
        return MeshTLS(self.chain, self.key, self.bundle)

    def client_context(self, with_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(cadata=self.bundle.decode())
        if with_cert:
            from gossamer.proxy.tls import _private_pem_path

            with _private_pem_path(self.key + b"\n" + self.chain) as path:
                ctx.load_cert_chain(path)
        return ctx


def material(
    ca: MeshCA, sid: str, ttl: int = 3600, now: dt.datetime | None = None, bundle: bytes = b""
) -> Material:
    identity = WorkloadIdentity()
    chain = ca.sign_csr(identity.csr_pem(), sid, ttl, now=now)
    return Material(chain, identity.key_pem(), bundle or ca.trust_bundle())


def entry(name: str, port: int | None, mtls: str = "STRICT") -> dict[str, Any]:
    endpoints = [] if port is None else [
        {"id": f"{name}-1", "address": "127.0.0.1", "port": port,
         "labels": {TLS_MODE_LABEL: "mtls"}}
    ]  # fmt: skip
    return {"name": name, "namespace": "default", "exists": True, "protocol": "HTTP",
            "endpoints": endpoints, "routes": [], "policy": {}, "mtls": mtls}  # fmt: skip


def install(holder: SnapshotHolder, services: dict[str, Any], version: int = 1) -> None:
    holder.update(
        Snapshot.from_wire(
            {
                "type": "snapshot",
                "protocol": 1,
                "version": version,
                "mesh": {"outboundTrafficPolicy": "REGISTRY_ONLY"},
                "services": services,
            }
        )
    )


@dataclass
class Side:
    holder: SnapshotHolder
    stats: Stats
    security: MeshSecurity
    plane: DataPlane
    seen: list[str | None] = field(default_factory=list)  # inbound callers' identities

    def use(self, m: Material, not_after: float = FAR) -> None:
        if self.security.tls is None:
            self.security.tls = m.tls()
        else:
            self.security.tls.update(m.chain, m.key, m.bundle)
        self.security.not_after = not_after


def side(own: str) -> Side:
    holder, stats = SnapshotHolder(), Stats()
    security = MeshSecurity(holder, f"default/{own}", stats.tls_handshake_failure)
    security.enabled, security.trust_domain = True, TD
    seen: list[str | None] = []

    def authorize(ex: Exchange) -> bool:
        seen.append(ex.client.identity)
        return True

    plane = DataPlane(holder, None, stats, authorize=authorize, mesh_security=security,
                      header_timeout=2.0)  # fmt: skip
    return Side(holder, stats, security, plane, seen)


async def app_server() -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@dataclass
class Pair:
    ca: MeshCA
    web: Side
    reviews: Side
    inbound: int
    outbound: int
    app_port: int

    def set_reviews_mode(self, mode: str) -> None:
        install(self.reviews.holder, {"default/reviews": entry("reviews", None, mode)}, 2)


@asynccontextmanager
async def mesh_pair(ca: MeshCA) -> AsyncIterator[Pair]:
    app = await app_server()
    web, reviews = side("web"), side("reviews")
    web.use(material(ca, WEB))
    reviews.use(material(ca, REVIEWS))
    install(reviews.holder, {"default/reviews": entry("reviews", None)})
    try:
        app_port = app.sockets[0].getsockname()[1]
        inbound = await reviews.plane.start_inbound("127.0.0.1", 0, "127.0.0.1", app_port)
        install(web.holder, {"default/reviews": entry("reviews", inbound)})
        outbound = await web.plane.start_outbound("127.0.0.1", 0)
        yield Pair(ca, web, reviews, inbound, outbound, app_port)
    finally:
        await web.plane.close()
        await reviews.plane.close()
        app.close()


async def get(port: int, host: str = "reviews", limit: float = 5.0) -> tuple[int, bytes]:
    """One plaintext GET through a sidecar's outbound port: (status, head+body)."""
    async with asyncio.timeout(limit):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        writer.close()
    return int(head.split(b" ", 2)[1]), head


async def raw_exchange(
    port: int, ctx: ssl.SSLContext | None, limit: float = 5.0
) -> bytes | BaseException:
    """Send one request straight to an inbound port; the answer, or why there was none."""
    try:
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
            writer.write(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
            data = await reader.read(4096)
            writer.close()
            return data
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError) as exc:
        return exc
