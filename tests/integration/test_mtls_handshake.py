"""Mutual TLS between two workloads over real loopback sockets: SVIDs from the mesh CA,
contexts from proxy/tls.py, peer SPIFFE IDs read on both sides, expiry, foreign CAs, and
root rotation with no failed handshake at any step."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gossamer.control.ca import Authority, MeshCA, generate_root, spiffe_id
from gossamer.proxy.identity import WorkloadIdentity
from gossamer.proxy.tls import (
    MeshTLS,
    PeerIdentityError,
    check_peer,
    client_context,
    peer_spiffe_id,
    server_context,
)

TD = "cluster.local"
REVIEWS = spiffe_id(TD, "default", "reviews")
RATINGS = spiffe_id(TD, "default", "ratings")
HANDSHAKE_ERRORS = (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)


@dataclass
class Workload:
    identity: WorkloadIdentity
    chain: bytes
    bundle: bytes

    def material(self) -> tuple[bytes, bytes, bytes]:
        return self.chain, self.identity.key_pem(), self.bundle

    def server(self) -> ssl.SSLContext:
        return server_context(*self.material())

    def client(self) -> ssl.SSLContext:
        return client_context(*self.material())


def workload(ca: MeshCA, sid: str, ttl: int = 3600, now: dt.datetime | None = None) -> Workload:
    identity = WorkloadIdentity()
    chain = ca.sign_csr(identity.csr_pem(), sid, ttl, now=now)
    return Workload(identity, chain, ca.trust_bundle())


@pytest.fixture
def ca(tmp_path: Path) -> MeshCA:
    return MeshCA.create(tmp_path / "ca", TD)


@dataclass
class EchoServer:
    """Answers each connection with the peer SPIFFE ID it saw, its TLS version and ALPN."""

    port: int
    seen: list[str | None]


@asynccontextmanager
async def echo_server(ctx: ssl.SSLContext) -> AsyncIterator[EchoServer]:
    seen: list[str | None] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tls = writer.get_extra_info("ssl_object")
        peer = peer_spiffe_id(tls)
        seen.append(peer)
        writer.write(f"{peer} {tls.version()} {tls.selected_alpn_protocol()}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield EchoServer(server.sockets[0].getsockname()[1], seen)
    finally:
        server.close()
        await server.wait_closed()


async def exchange(ctx: ssl.SSLContext, port: int, expect_server: str | None = None) -> str:
    """Connect, check the server's ID (as outbound will), return what the server saw."""
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        try:
            if expect_server is not None:
                check_peer(writer.get_extra_info("ssl_object"), expect_server)
            # TLS 1.3 finishes the client's side before the server checks its certificate:
            # a refusal shows up as an alert or EOF on the first read.
            line = await reader.readline()
            if not line:
                raise ConnectionResetError("server closed without answering")
            return line.decode().strip()
        finally:
            writer.close()


async def test_mutual_handshake_reads_identities_on_both_sides(ca: MeshCA) -> None:
    server, client = workload(ca, REVIEWS), workload(ca, RATINGS)
    async with echo_server(server.server()) as echo:
        answer = await exchange(client.client(), echo.port, expect_server=REVIEWS)
    assert answer == f"{RATINGS} TLSv1.3 http/1.1"
    assert echo.seen == [RATINGS]


async def test_tls12_client_still_connects(ca: MeshCA) -> None:
    server, client = workload(ca, REVIEWS), workload(ca, RATINGS)
    ctx = client.client()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    async with echo_server(server.server()) as echo:
        assert await exchange(ctx, echo.port, REVIEWS) == f"{RATINGS} TLSv1.2 http/1.1"


async def test_client_refuses_a_server_with_the_wrong_spiffe_id(ca: MeshCA) -> None:
    impostor, client = workload(ca, spiffe_id(TD, "default", "payments")), workload(ca, RATINGS)
    async with echo_server(impostor.server()) as echo:
        with pytest.raises(PeerIdentityError, match=r"sa/payments, expected .*sa/reviews"):
            await exchange(client.client(), echo.port, expect_server=REVIEWS)


async def test_certificates_from_another_ca_fail_both_ways(ca: MeshCA, tmp_path: Path) -> None:
    foreign_ca = MeshCA.create(tmp_path / "foreign", TD)  # same trust domain, other root
    good, foreign = workload(ca, REVIEWS), workload(foreign_ca, RATINGS)
    async with echo_server(good.server()) as echo:
        with pytest.raises(HANDSHAKE_ERRORS):
            await exchange(foreign.client(), echo.port)
        assert echo.seen == []  # the server never accepted it
        # Control: the same server accepts a client of its own CA.
        await exchange(workload(ca, RATINGS).client(), echo.port, REVIEWS)
    async with echo_server(foreign.server()) as echo:
        with pytest.raises(ssl.SSLCertVerificationError):
            await exchange(good.client(), echo.port)


async def test_client_without_a_certificate_is_refused(ca: MeshCA) -> None:
    server = workload(ca, REVIEWS)
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.check_hostname = False
    anonymous.load_verify_locations(cadata=ca.trust_bundle().decode())
    async with echo_server(server.server()) as echo:
        with pytest.raises(HANDSHAKE_ERRORS):
            await exchange(anonymous, echo.port)
        assert echo.seen == []


async def test_expired_certificates_fail_both_ways(ca: MeshCA) -> None:
    two_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    expired = workload(ca, RATINGS, ttl=1, now=two_days_ago)  # notAfter is in the past
    assert (
        expired.identity.install(expired.chain, expired.bundle).not_after
        < two_days_ago.timestamp() + 2
    )
    server = workload(ca, REVIEWS)
    async with echo_server(server.server()) as echo:
        with pytest.raises(HANDSHAKE_ERRORS):
            await exchange(expired.client(), echo.port)
        assert echo.seen == []
    async with echo_server(expired.server()) as echo:
        with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
            await exchange(server.client(), echo.port)


async def test_user_supplied_intermediate_chain_handshakes(tmp_path: Path) -> None:
    offline_root = generate_root("corp.example")
    inter = make_intermediate(offline_root)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(
        inter.cert.public_bytes(pem) + offline_root.cert.public_bytes(pem)
    )
    key_path = tmp_path / "ca.key"
    key_path.write_bytes(inter.key_pem())
    key_path.chmod(0o600)
    ca = MeshCA.open(tmp_path / "ca", TD, ca_cert=tmp_path / "ca.pem", ca_key=key_path)
    server, client = workload(ca, REVIEWS), workload(ca, RATINGS)
    assert server.chain.count(b"BEGIN CERTIFICATE") == 2  # leaf + intermediate
    async with echo_server(server.server()) as echo:
        assert (await exchange(client.client(), echo.port, REVIEWS)).startswith(RATINGS)
    assert echo.seen == [RATINGS]


def make_intermediate(parent: Authority) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mesh intermediate")]))
        .issuer_name(parent.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(parent.key, hashes.SHA256())
    )
    return Authority(cert, key)


def issuer_cn(tls: ssl.SSLObject) -> str:
    issuer = dict(pair[0] for pair in tls.getpeercert()["issuer"])
    return str(issuer["commonName"])


async def test_hot_rotation_without_restarting_the_listener(ca: MeshCA) -> None:
    """Server and client sidecars pick up each rotation step one after the other; every
    handshake at every point succeeds, all on one listener started before the rotation."""
    server_wl, client_wl = workload(ca, REVIEWS), workload(ca, RATINGS)
    server_tls, client_tls = MeshTLS(*server_wl.material()), MeshTLS(*client_wl.material())
    old_root_cn = ca.signing_authority.cert.subject.rfc4514_string()
    server_issuers: list[str] = []

    def renew(tls: MeshTLS, wl: Workload, sid: str) -> None:
        wl.chain, wl.bundle = ca.sign_csr(wl.identity.csr_pem(), sid), ca.trust_bundle()
        tls.update(*wl.material())

    async with echo_server(server_tls.server_context) as echo:

        async def handshake(client_ctx: ssl.SSLContext) -> None:
            async with asyncio.timeout(10):
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", echo.port, ssl=client_ctx
                )
                try:
                    tls = writer.get_extra_info("ssl_object")
                    check_peer(tls, REVIEWS)
                    server_issuers.append(issuer_cn(tls))
                    line = await reader.readline()
                    if not line:
                        raise ConnectionResetError("server refused the client")
                    assert line.decode().startswith(RATINGS)
                finally:
                    writer.close()

        await handshake(client_tls.client_context)
        new_root = ca.begin_rotation()
        # A client that took the two-root bundle but keeps its old-root certificate.
        stale = workload(ca, RATINGS)
        renew(server_tls, server_wl, REVIEWS)
        await handshake(client_tls.client_context)  # client still has the one-root bundle
        renew(client_tls, client_wl, RATINGS)
        await handshake(client_tls.client_context)

        ca.switch_signing()
        renew(client_tls, client_wl, RATINGS)  # client first this time: new-root cert
        await handshake(client_tls.client_context)
        renew(server_tls, server_wl, REVIEWS)
        await handshake(client_tls.client_context)
        await handshake(stale.client())  # old-root client certs still accepted

        ca.finish_rotation()
        renew(server_tls, server_wl, REVIEWS)
        await handshake(client_tls.client_context)
        renew(client_tls, client_wl, RATINGS)
        await handshake(client_tls.client_context)

        assert server_tls.generation == client_tls.generation == 4
        assert len(echo.seen) == 8 and set(echo.seen) == {RATINGS}
        new_cn = new_root.cert.subject.rfc4514_string().removeprefix("CN=")
        assert server_issuers[0] in old_root_cn and server_issuers[-1] in new_cn
        assert server_issuers[-1] != server_issuers[0]

        # The same listener now trusts only the new root: the stale client is refused.
        with pytest.raises(HANDSHAKE_ERRORS):
            await handshake(stale.client())
        assert len(echo.seen) == 8


async def test_bad_material_keeps_the_current_contexts(ca: MeshCA) -> None:
    wl = workload(ca, REVIEWS)
    tls = MeshTLS(*wl.material())
    before = tls.client_context
    with pytest.raises(ssl.SSLError):
        tls.update(wl.chain, WorkloadIdentity().key_pem(), wl.bundle)  # key does not match
    assert tls.client_context is before and tls.generation == 1


async def test_skipping_bundle_propagation_breaks_handshakes(ca: MeshCA) -> None:
    """Why each step must reach every workload first: a client whose bundle predates
    begin_rotation cannot verify a server whose certificate the new root signed."""
    behind = workload(ca, RATINGS)  # one-root bundle
    ca.begin_rotation()
    ca.switch_signing()
    ahead = workload(ca, REVIEWS)
    async with echo_server(ahead.server()) as echo:
        with pytest.raises(ssl.SSLCertVerificationError):
            await exchange(behind.client(), echo.port)
    assert echo.seen == []


def hand_made_leaf(ca: MeshCA, identity: WorkloadIdentity, names: list[x509.GeneralName]) -> bytes:
    """A leaf our own CA key signed but with SANs the CA would never issue."""
    signer = ca.signing_authority
    public = x509.load_pem_x509_csr(identity.csr_pem()).public_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(signer.cert.subject)
        .public_key(public)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .sign(signer.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    "names",
    [
        [x509.UniformResourceIdentifier(REVIEWS), x509.UniformResourceIdentifier(RATINGS)],
        [x509.DNSName("reviews.default.svc")],
        [x509.UniformResourceIdentifier("https://reviews.default.svc")],
    ],
    ids=["two-uris", "dns-only", "not-spiffe"],
)
async def test_peer_without_exactly_one_spiffe_uri_has_no_identity(
    ca: MeshCA, names: list[x509.GeneralName]
) -> None:
    identity = WorkloadIdentity()
    odd = Workload(identity, hand_made_leaf(ca, identity, names), ca.trust_bundle())
    client = workload(ca, RATINGS)
    async with echo_server(odd.server()) as echo:
        with pytest.raises(PeerIdentityError, match="peer identity is missing"):
            await exchange(client.client(), echo.port, expect_server=REVIEWS)
        assert (await exchange(client.client(), echo.port)).startswith(RATINGS)
    async with echo_server(client.server()) as echo:
        assert (await exchange(odd.client(), echo.port)).startswith("None ")
    assert echo.seen == [None]
