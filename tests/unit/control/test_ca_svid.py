"""X.509-SVIDs from the mesh CA: every field the SPIFFE spec fixes, and hostile CSRs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID
from cryptography.x509.verification import PolicyBuilder, Store

from gossamer.control.ca import CsrError, MeshCA, spiffe_id

NOW = dt.datetime(2026, 1, 10, 12, 0, 0, tzinfo=dt.UTC)
REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"


@pytest.fixture
def ca(tmp_path: Path) -> MeshCA:
    return MeshCA.create(tmp_path / "ca", "cluster.local", now=NOW - dt.timedelta(days=1))


def make_csr(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, names: list[x509.GeneralName]
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin.evil.example")])
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    # Ask for CA powers too: the CA must not copy any requested extension.
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def root_of(ca: MeshCA) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ca.trust_bundle())


def test_svid_has_exactly_the_fields_the_spec_requires(ca: MeshCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = ca.sign_csr(make_csr(key, []), REVIEWS, ttl_seconds=3600, now=NOW)
    certs = x509.load_pem_x509_certificates(pem)
    assert len(certs) == 1  # a self-signed root is in the bundle, not in the chain
    leaf, root = certs[0], root_of(ca)

    assert leaf.version == x509.Version.v3
    assert leaf.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert leaf.issuer == root.subject
    leaf.verify_directly_issued_by(root)
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    assert leaf.not_valid_before_utc == NOW - dt.timedelta(seconds=60)
    assert leaf.not_valid_after_utc == NOW + dt.timedelta(seconds=3600)
    assert leaf.serial_number > 2**64  # random 159-bit serials

    exts = {type(e.value): e for e in leaf.extensions}
    assert set(exts) == {
        x509.BasicConstraints,
        x509.KeyUsage,
        x509.ExtendedKeyUsage,
        x509.SubjectAlternativeName,
        x509.SubjectKeyIdentifier,
        x509.AuthorityKeyIdentifier,
    }
    basic = exts[x509.BasicConstraints]
    assert basic.critical and basic.value == x509.BasicConstraints(ca=False, path_length=None)
    usage = exts[x509.KeyUsage]
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.crl_sign
    assert not usage.value.key_encipherment and not usage.value.key_agreement
    assert list(exts[x509.ExtendedKeyUsage].value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    san = exts[x509.SubjectAlternativeName].value
    assert list(san) == [x509.UniformResourceIdentifier(REVIEWS)]
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert exts[x509.AuthorityKeyIdentifier].value.key_identifier == root_ski.digest

    # An independent RFC 5280 path validator accepts it as a client certificate.
    verifier = PolicyBuilder().store(Store([root])).time(NOW).build_client_verifier()
    assert verifier.verify(leaf, []).subjects == [x509.UniformResourceIdentifier(REVIEWS)]


def test_serials_are_random_and_distinct(ca: MeshCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    serials = {
        x509.load_pem_x509_certificate(ca.sign_csr(make_csr(key, []), REVIEWS)).serial_number
        for _ in range(5)
    }
    assert len(serials) == 5


def test_forged_sans_and_subject_are_ignored(ca: MeshCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    forged = [
        x509.UniformResourceIdentifier("spiffe://cluster.local/ns/kube-system/sa/admin"),
        x509.UniformResourceIdentifier("spiffe://other.domain/ns/default/sa/reviews"),
        x509.DNSName("payments.default.svc"),
    ]
    leaf = x509.load_pem_x509_certificate(ca.sign_csr(make_csr(key, forged), REVIEWS, now=NOW))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.UniformResourceIdentifier(REVIEWS)]
    assert "evil" not in leaf.subject.rfc4514_string()
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_bad_csr_signature_is_refused(ca: MeshCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    good = x509.load_pem_x509_csr(make_csr(key, []))
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature's last integer
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CsrError, match="signature does not verify"):
        ca.sign_csr(tampered, REVIEWS)


@pytest.mark.parametrize(
    "csr",
    [
        b"",
        b"not a csr",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "x" * 20000,
    ],
)
def test_garbage_csr_is_a_clean_error(ca: MeshCA, csr: bytes | str) -> None:
    with pytest.raises(CsrError):
        ca.sign_csr(csr, REVIEWS)


def test_weak_or_unsupported_keys_are_refused(ca: MeshCA) -> None:
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(CsrError, match="2048"):
        ca.sign_csr(make_csr(weak, []), REVIEWS)
    edwards = ed25519.Ed25519PrivateKey.generate()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(edwards, None)
        .public_bytes(serialization.Encoding.PEM)
    )
    with pytest.raises(CsrError, match="not accepted"):
        ca.sign_csr(csr, REVIEWS)


def test_ttl_is_configurable_down_to_seconds_and_bounded(ca: MeshCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = x509.load_pem_x509_certificate(ca.sign_csr(make_csr(key, []), REVIEWS, 5, now=NOW))
    assert leaf.not_valid_after_utc - NOW == dt.timedelta(seconds=5)
    # Backdating never exceeds the TTL, so a 5 s cert lives 10 s at most.
    assert NOW - leaf.not_valid_before_utc == dt.timedelta(seconds=5)
    default = x509.load_pem_x509_certificate(ca.sign_csr(make_csr(key, []), REVIEWS, now=NOW))
    assert default.not_valid_after_utc - NOW == dt.timedelta(hours=24)
    for bad in (0, -1, 10**9):
        with pytest.raises(ValueError, match="ttl_seconds"):
            ca.sign_csr(make_csr(key, []), REVIEWS, bad, now=NOW)


def test_leaf_never_outlives_its_ca(tmp_path: Path) -> None:
    short = MeshCA.create(tmp_path / "ca", "cluster.local", validity=dt.timedelta(hours=2), now=NOW)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = x509.load_pem_x509_certificate(
        short.sign_csr(make_csr(key, []), REVIEWS, 86400, now=NOW)
    )
    assert leaf.not_valid_after_utc == root_of(short).not_valid_after_utc


def test_identity_must_be_a_workload_of_this_trust_domain(ca: MeshCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = make_csr(key, [])
    with pytest.raises(ValueError, match="outside trust domain"):
        ca.sign_csr(csr, "spiffe://other.domain/ns/default/sa/reviews")
    with pytest.raises(ValueError, match="not a workload"):
        ca.sign_csr(csr, "spiffe://cluster.local")
    with pytest.raises(ValueError):
        ca.sign_csr(csr, "spiffe://cluster.local/ns//sa/x")


def test_root_is_a_p256_ca_with_pathlen_one(ca: MeshCA) -> None:
    root = root_of(ca)
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)
    key = root.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    basic = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 1
    usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and not usage.value.digital_signature
    san = root.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.UniformResourceIdentifier("spiffe://cluster.local")]
    assert root.not_valid_after_utc - root.not_valid_before_utc > dt.timedelta(days=3649)


def test_workload_id_helper_matches_the_svid(ca: MeshCA) -> None:
    assert spiffe_id("cluster.local", "default", "reviews") == REVIEWS
