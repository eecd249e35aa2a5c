"""The mesh CA's directory: key file modes, reloading, user-supplied CAs, rotation steps."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from gossamer.control.ca import (
    AuthorityError,
    InsecureKeyFileError,
    MeshCA,
    RotationError,
    RotationState,
    generate_root,
)

REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"


def csr_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def bundle_ids(ca: MeshCA) -> list[x509.Name]:
    return [c.subject for c in x509.load_pem_x509_certificates(ca.trust_bundle())]


def issuer_of(pem: bytes) -> x509.Name:
    return x509.load_pem_x509_certificates(pem)[0].issuer


@pytest.fixture
def open_umask() -> Iterator[None]:
    # The key must be 0600 even when the operator's umask would make files world-readable.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_new_ca_directory_is_private_and_reloads(tmp_path: Path, open_umask: None) -> None:
    ca = MeshCA.open(tmp_path / "ca", "cluster.local")
    aid = ca.signing_authority.id
    assert mode(tmp_path / "ca") == 0o700
    assert mode(tmp_path / "ca" / f"{aid}.key.pem") == 0o600
    state = json.loads((tmp_path / "ca" / "state.json").read_text())
    assert state == {"trustDomain": "cluster.local", "signing": aid, "trusted": [aid]}

    again = MeshCA.open(tmp_path / "ca", "cluster.local")
    assert again.trust_bundle() == ca.trust_bundle()
    assert issuer_of(again.sign_csr(csr_pem(), REVIEWS)) == bundle_ids(ca)[0]
    with pytest.raises(AuthorityError, match=r"trust domain 'cluster\.local'"):
        MeshCA.open(tmp_path / "ca", "other.domain")
    with pytest.raises(AuthorityError, match="already holds a CA"):
        MeshCA.create(tmp_path / "ca", "cluster.local")


@pytest.mark.parametrize("bad_mode", [0o640, 0o604, 0o644, 0o660])
def test_key_readable_by_others_is_refused(tmp_path: Path, bad_mode: int) -> None:
    ca = MeshCA.create(tmp_path / "ca", "cluster.local")
    key = tmp_path / "ca" / f"{ca.signing_authority.id}.key.pem"
    key.chmod(bad_mode)
    with pytest.raises(InsecureKeyFileError, match=rf"mode {bad_mode:04o}.*chmod 600"):
        MeshCA.load(tmp_path / "ca")
    key.chmod(0o600)
    assert MeshCA.load(tmp_path / "ca").trust_bundle() == ca.trust_bundle()


def write_user_ca(tmp_path: Path, key_mode: int = 0o600) -> tuple[Path, Path, x509.Certificate]:
    """An organisation's offline root and an intermediate it signed for the mesh."""
    offline = generate_root("corp.example")
    inter_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    inter = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mesh intermediate")]))
        .issuer_name(offline.cert.subject)
        .public_key(inter_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(offline.key.public_key()), False
        )
        .sign(offline.key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "mesh-ca.pem", tmp_path / "mesh-ca.key"
    pem = serialization.Encoding.PEM
    cert_path.write_bytes(inter.public_bytes(pem) + offline.cert.public_bytes(pem))
    key_path.write_bytes(
        inter_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(key_mode)
    return cert_path, key_path, offline.cert


def test_user_supplied_intermediate_signs_and_chains_to_its_root(tmp_path: Path) -> None:
    cert_path, key_path, offline_root = write_user_ca(tmp_path)
    ca = MeshCA.open(tmp_path / "ca", "cluster.local", ca_cert=cert_path, ca_key=key_path)
    assert x509.load_pem_x509_certificates(ca.trust_bundle()) == [offline_root]
    chain = x509.load_pem_x509_certificates(ca.sign_csr(csr_pem(), REVIEWS))
    assert [c.subject.rfc4514_string() for c in chain[1:]] == ["CN=mesh intermediate"]
    verifier = PolicyBuilder().store(Store([offline_root])).build_client_verifier()
    assert verifier.verify(chain[0], chain[1:]).subjects == [
        x509.UniformResourceIdentifier(REVIEWS)
    ]
    # Reopening with the same files is fine; with another CA it asks for a rotation.
    MeshCA.open(tmp_path / "ca", "cluster.local", ca_cert=cert_path, ca_key=key_path)
    (tmp_path / "other").mkdir()
    other_cert, other_key, _ = write_user_ca(tmp_path / "other")
    with pytest.raises(AuthorityError, match="rotate"):
        MeshCA.open(tmp_path / "ca", "cluster.local", ca_cert=other_cert, ca_key=other_key)


def test_user_supplied_key_must_be_private(tmp_path: Path) -> None:
    cert_path, key_path, _ = write_user_ca(tmp_path, key_mode=0o644)
    with pytest.raises(InsecureKeyFileError, match=r"mesh-ca\.key"):
        MeshCA.open(tmp_path / "ca", "cluster.local", ca_cert=cert_path, ca_key=key_path)
    assert not (tmp_path / "ca").exists()


def test_user_supplied_ca_errors_name_the_problem(tmp_path: Path) -> None:
    cert_path, key_path, _ = write_user_ca(tmp_path)
    with pytest.raises(AuthorityError, match="go together"):
        MeshCA.open(tmp_path / "ca", "cluster.local", ca_cert=cert_path)
    with pytest.raises(AuthorityError, match="no such file"):
        MeshCA.open(tmp_path / "ca", "cluster.local", ca_cert=cert_path, ca_key=tmp_path / "nope")
    wrong_key = tmp_path / "wrong.key"
    wrong_key.write_bytes(generate_root("x").key_pem())
    wrong_key.chmod(0o600)
    with pytest.raises(AuthorityError, match="does not match"):
        MeshCA.open(tmp_path / "ca", "cluster.local", ca_cert=cert_path, ca_key=wrong_key)
    leaf_path = tmp_path / "leaf.pem"
    ca = MeshCA.create(tmp_path / "ca2", "cluster.local")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    leaf_path.write_bytes(ca.sign_csr(csr.public_bytes(serialization.Encoding.PEM), REVIEWS))
    leaf_key = tmp_path / "leaf.key"
    leaf_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    leaf_key.chmod(0o600)
    with pytest.raises(AuthorityError, match="CA:false"):
        MeshCA.open(tmp_path / "ca3", "cluster.local", ca_cert=leaf_path, ca_key=leaf_key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"hello")
    with pytest.raises(AuthorityError, match="not valid PEM"):
        MeshCA.open(tmp_path / "ca4", "cluster.local", ca_cert=garbage, ca_key=key_path)


def test_rotation_steps_change_bundle_and_signer_in_order(tmp_path: Path) -> None:
    ca = MeshCA.create(tmp_path / "ca", "cluster.local")
    old = bundle_ids(ca)
    assert ca.phase == "stable"
    with pytest.raises(RotationError, match="begin_rotation"):
        ca.switch_signing()

    new_authority = ca.begin_rotation()
    assert ca.phase == "rotating"
    assert bundle_ids(ca) == [*old, new_authority.cert.subject]
    assert issuer_of(ca.sign_csr(csr_pem(), REVIEWS)) == old[0]  # old still signs
    with pytest.raises(RotationError, match="switch_signing"):
        ca.finish_rotation()
    with pytest.raises(RotationError, match="already in progress"):
        ca.begin_rotation()

    ca.switch_signing()
    assert ca.phase == "switched"
    assert MeshCA.load(tmp_path / "ca").phase == "switched"  # persisted at every step
    assert issuer_of(ca.sign_csr(csr_pem(), REVIEWS)) == new_authority.cert.subject
    assert len(bundle_ids(ca)) == 2

    trusted = json.loads((tmp_path / "ca" / "state.json").read_text())["trusted"]
    old_id = trusted[0]
    assert trusted == [old_id, new_authority.id]
    ca.finish_rotation()
    assert ca.phase == "stable"
    assert bundle_ids(ca) == [new_authority.cert.subject]
    assert not (tmp_path / "ca" / f"{old_id}.key.pem").exists()  # retired key is gone
    reloaded = MeshCA.load(tmp_path / "ca")
    assert reloaded.trust_bundle() == ca.trust_bundle()
    assert reloaded.signing_authority.id == new_authority.id


def test_rotation_state_machine_is_pure_and_validates_stored_state() -> None:
    state = RotationState("a", ("a",))
    rotating = state.begin("b")
    switched = rotating.switch()
    finished, retired = switched.finish()
    assert (rotating.phase, switched.phase, finished.phase) == ("rotating", "switched", "stable")
    assert (finished, retired) == (RotationState("b", ("b",)), "a")
    assert state == RotationState("a", ("a",))  # transitions return new states
    with pytest.raises(RotationError, match="already trusted"):
        state.begin("a")
    assert RotationState.from_json(switched.to_json()) == switched
    for bad in (
        [],
        {"signing": "a"},
        {"signing": "c", "trusted": ["a"]},
        {"signing": "a", "trusted": ["a", "b", "c"]},
    ):
        with pytest.raises(ValueError):
            RotationState.from_json(bad)


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    MeshCA.create(tmp_path / "ca", "cluster.local")
    (tmp_path / "ca" / "state.json").write_text("{not json")
    with pytest.raises(AuthorityError, match=r"state\.json"):
        MeshCA.load(tmp_path / "ca")
