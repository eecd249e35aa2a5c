"""SSL contexts from in-memory PEM: settings, key loading without leaving files behind."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

import pytest

from gossamer.control.ca import MeshCA
from gossamer.proxy.identity import WorkloadIdentity
from gossamer.proxy.tls import MeshTLS, client_context, peer_spiffe_id, server_context

REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, bytes]:
    ca = MeshCA.create(tmp_path_factory.mktemp("ca") / "ca", "cluster.local")
    identity = WorkloadIdentity()
    return ca.sign_csr(identity.csr_pem(), REVIEWS), identity.key_pem(), ca.trust_bundle()


def test_server_context_requires_client_certs_and_offers_no_tickets(
    material: tuple[bytes, bytes, bytes],
) -> None:
    ctx = server_context(*material)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_TICKET and ctx.num_tickets == 0
    assert len(ctx.get_ca_certs()) == 1


def test_client_context_verifies_chain_but_not_dns_names(
    material: tuple[bytes, bytes, bytes],
) -> None:
    ctx = client_context(*material)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and not ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert all("ECDHE" in c["name"] or c["protocol"] == "TLSv1.3" for c in ctx.get_ciphers())


def test_without_memfd_the_key_goes_through_a_private_temp_file_that_is_removed(
    material: tuple[bytes, bytes, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "memfd_create")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    modes: list[int] = []
    real_load = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, *args: object) -> None:
        modes.append(os.stat(certfile).st_mode & 0o777)
        modes.append(os.stat(os.path.dirname(certfile)).st_mode & 0o777)
        real_load(self, certfile, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    server_context(*material)
    assert modes == [0o600, 0o700]
    assert list(tmp_path.iterdir()) == []  # nothing left on disk


def test_memfd_path_leaves_no_file_anywhere(
    material: tuple[bytes, bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(os, "memfd_create"):
        pytest.skip("memfd_create is Linux-only")
    paths: list[str] = []
    real_load = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, *args: object) -> None:
        paths.append(certfile)
        real_load(self, certfile, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    client_context(*material)
    assert len(paths) == 1 and paths[0].startswith("/proc/self/fd/")
    assert not os.path.exists(paths[0])  # the descriptor is closed again


def test_garbage_material_raises_ssl_error(material: tuple[bytes, bytes, bytes]) -> None:
    chain, key, bundle = material
    with pytest.raises(ssl.SSLError):
        server_context(b"junk", key, bundle)
    with pytest.raises(ssl.SSLError):
        client_context(
            chain, key, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
    tls = MeshTLS(*material)
    with pytest.raises(ssl.SSLError):
        tls.update(chain, b"junk", bundle)
    assert tls.generation == 1


def test_peer_spiffe_id_without_a_peer() -> None:
    assert peer_spiffe_id(None) is None
