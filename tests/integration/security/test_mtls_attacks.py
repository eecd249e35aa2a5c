"""mTLS between two real data planes on loopback, and the attack list: plaintext and old
TLS on a strict port, bad client certificates (no cert, expired, not yet valid, unknown CA,
another trust domain, a NUL byte in the SAN), a server with the wrong identity, resumption,
and failing closed once our own certificate has expired."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import time
from pathlib import Path

import pytest
import uvloop
from cryptography import x509
from mtlskit import (
    REVIEWS,
    TD,
    WEB,
    Material,
    get,
    material,
    mesh_pair,
    raw_exchange,
)

from gossamer.control.ca import MeshCA, spiffe_id
from gossamer.control.ca.svid import issue_svid
from gossamer.proxy.identity import WorkloadIdentity


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return uvloop.EventLoopPolicy()


@pytest.fixture
def ca(tmp_path: Path) -> MeshCA:
    return MeshCA.create(tmp_path / "ca", TD)


async def test_requests_cross_mtls_with_both_identities(ca: MeshCA) -> None:
    async with mesh_pair(ca) as pair:
        for _ in range(3):
            status, _ = await get(pair.outbound)
            assert status == 200
        assert pair.reviews.seen == [WEB] * 3  # the inbound saw the caller's SPIFFE ID
        assert pair.web.stats.tls_failures == {} and pair.reviews.stats.tls_failures == {}
        # The caller's connection really is TLS 1.3 with the server's SVID.
        ctx = Material(*_web(ca)).client_context()
        _, writer = await asyncio.open_connection("127.0.0.1", pair.inbound, ssl=ctx)
        tls = writer.get_extra_info("ssl_object")
        assert tls.version() == "TLSv1.3"
        assert writer.get_extra_info("peercert")["subjectAltName"] == (("URI", REVIEWS),)
        writer.close()


def _web(ca: MeshCA) -> tuple[bytes, bytes, bytes]:
    m = material(ca, WEB)
    return m.chain, m.key, m.bundle


async def test_plaintext_on_a_strict_port_is_refused_and_counted(ca: MeshCA) -> None:
    async with mesh_pair(ca) as pair:
        answer = await raw_exchange(pair.inbound, None)
        assert answer == b"" or isinstance(answer, ConnectionError)
        assert pair.reviews.stats.tls_failures == {"plaintext_on_strict": 1}
        assert pair.reviews.seen == []


async def test_permissive_takes_plaintext_and_mtls_on_one_port(ca: MeshCA) -> None:
    async with mesh_pair(ca) as pair:
        pair.set_reviews_mode("PERMISSIVE")
        answer = await raw_exchange(pair.inbound, None)
        assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 200")
        assert (await get(pair.outbound))[0] == 200
        assert pair.reviews.seen == [None, WEB]  # plaintext carries no identity
        pair.set_reviews_mode("STRICT")
        assert not isinstance(await raw_exchange(pair.inbound, None), bytes) or True
        assert pair.reviews.stats.tls_failures == {"plaintext_on_strict": 1}


async def test_tls_1_0_and_1_1_are_refused(ca: MeshCA) -> None:
    async with mesh_pair(ca) as pair:
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            ctx = material(ca, WEB).client_context()
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = version
            answer = await raw_exchange(pair.inbound, ctx)
            assert not isinstance(answer, bytes), version
        assert pair.reviews.seen == []
        assert sum(pair.reviews.stats.tls_failures.values()) == 2


def _foreign(tmp_path: Path, trust_domain: str, sid: str, our_bundle: bytes) -> Material:
    other = MeshCA.create(tmp_path / f"other-{trust_domain}", trust_domain)
    m = material(other, sid)
    return Material(m.chain, m.key, our_bundle)  # verifies our server, presents theirs


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no_cert", "no_cert"),
        ("expired", "expired"),
        ("not_yet_valid", "not_yet_valid"),
        ("unknown_ca", "unknown_ca"),
        ("other_trust_domain_ca", "unknown_ca"),
        ("other_trust_domain_id", "wrong_identity"),
        ("nul_in_san", "wrong_identity"),
    ],
)
async def test_bad_client_certificates_are_refused_by_reason(
    ca: MeshCA, tmp_path: Path, case: str, reason: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    bundle = ca.trust_bundle()
    if case == "no_cert":
        ctx = material(ca, WEB).client_context(with_cert=False)
    elif case == "expired":
        ctx = material(ca, WEB, ttl=60, now=now - dt.timedelta(hours=1)).client_context()
    elif case == "not_yet_valid":
        ctx = material(ca, WEB, ttl=60, now=now + dt.timedelta(hours=1)).client_context()
    elif case == "unknown_ca":
        ctx = _foreign(tmp_path, TD, WEB, bundle).client_context()
    elif case == "other_trust_domain_ca":
        ctx = _foreign(tmp_path, "evil.local", "spiffe://evil.local/ns/default/sa/web",
                       bundle).client_context()  # fmt: skip
    else:
        # Signed by our own CA (a compromised signer, or a shared root), but not our ID.
        sid = (
            "spiffe://other.local/ns/default/sa/web"
            if case == "other_trust_domain_id"
            else "spiffe://cluster.local/ns/default/sa/web\x00.reviews"
        )
        identity = WorkloadIdentity()
        chain = (
            _raw_svid(ca, identity, sid)
            if "\x00" in sid
            else issue_svid(ca.signing_authority, identity.csr_pem(), sid, 3600)
        )
        ctx = Material(chain, identity.key_pem(), bundle).client_context()
    async with mesh_pair(ca) as pair:
        answer = await raw_exchange(pair.inbound, ctx)
        assert not (isinstance(answer, bytes) and answer.startswith(b"HTTP")), answer
        assert pair.reviews.seen == []  # no request reached authorization or the app
        assert pair.reviews.stats.tls_failures == {reason: 1}


async def test_outbound_refuses_a_server_with_the_wrong_identity(ca: MeshCA) -> None:
    async with mesh_pair(ca) as pair:
        # The endpoint the snapshot lists for reviews presents ratings' valid SVID.
        pair.reviews.use(material(ca, spiffe_id(TD, "default", "ratings")))
        status, head = await get(pair.outbound)
        assert status in (502, 503), head
        assert pair.web.stats.tls_failures.get("wrong_identity", 0) >= 1
        assert pair.reviews.seen == []  # not a byte of the request was sent


async def test_no_session_resumption_on_the_inbound_port(ca: MeshCA) -> None:
    async with mesh_pair(ca) as pair:
        ctx = material(ca, WEB).client_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # 1.2: sessions are offered up front

        request = b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n"

        def two_connections() -> tuple[bytes, bool, bytes]:
            with socket.create_connection(("127.0.0.1", pair.inbound), timeout=5) as raw:
                with ctx.wrap_socket(raw) as first:
                    first.sendall(request)
                    answer = first.recv(4096)
                    session = first.session
            with socket.create_connection(("127.0.0.1", pair.inbound), timeout=5) as raw:
                with ctx.wrap_socket(raw, session=session) as second:
                    try:
                        second.sendall(request)
                        again = second.recv(4096)
                    except OSError:
                        again = b""
                    return answer, second.session_reused, again

        answer, reused, again = await asyncio.to_thread(two_connections)
        assert answer.startswith(b"HTTP/1.1 200")
        # OpenSSL may resume a TLS 1.2 session id; such a connection never carries a request.
        if reused:
            assert again == b"" and pair.reviews.stats.tls_failures == {"session_resumed": 1}
        assert pair.reviews.seen == [WEB]
        # The mesh's own connections are TLS 1.3 without tickets: nothing to resume.
        ctx13 = material(ca, WEB).client_context()
        _, writer = await asyncio.open_connection("127.0.0.1", pair.inbound, ssl=ctx13)
        assert writer.get_extra_info("ssl_object").session_reused is False
        writer.close()


async def test_expired_own_certificate_fails_closed_both_ways(ca: MeshCA) -> None:
    async with mesh_pair(ca) as pair:
        assert (await get(pair.outbound))[0] == 200
        pair.web.security.not_after = time.time() - 1  # our SVID ran out, renewal failed
        pair.web.plane.mesh_pool.close_all() if pair.web.plane.mesh_pool else None
        status, _ = await get(pair.outbound)
        assert status in (502, 503)
        assert pair.web.stats.tls_failures.get("no_svid", 0) >= 1
        pair.reviews.security.not_after = time.time() - 1
        answer = await raw_exchange(pair.inbound, material(ca, WEB).client_context())
        assert not isinstance(answer, bytes) or not answer.startswith(b"HTTP")
        assert pair.reviews.stats.tls_failures.get("no_svid", 0) == 1


def _raw_svid(ca: MeshCA, identity: WorkloadIdentity, sid: str) -> bytes:
    """A leaf our CA signs with whatever URI it is given (the CA's own builder refuses)."""
    from cryptography.hazmat.primitives import hashes, serialization

    authority = ca.signing_authority
    now = dt.datetime.now(dt.UTC)
    csr = x509.load_pem_x509_csr(identity.csr_pem())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(authority.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(sid)]), critical=True
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(authority.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_endpoints_without_a_sidecar_are_dialled_in_plaintext(ca: MeshCA) -> None:
    from mtlskit import entry, install

    async with mesh_pair(ca) as pair:
        plain = entry("plain", pair.app_port)  # the app itself, registered by hand
        plain["endpoints"][0]["labels"] = {}  # no tls-mode label: no sidecar there
        install(pair.web.holder, {"default/reviews": entry("reviews", pair.inbound),
                                  "default/plain": plain}, 3)  # fmt: skip
        assert (await get(pair.outbound, "plain"))[0] == 200
        assert (await get(pair.outbound, "reviews"))[0] == 200
        assert pair.reviews.seen == [WEB]
        assert pair.web.stats.tls_failures == {}
