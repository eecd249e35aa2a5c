"""One signing authority: a CA certificate (plus the chain above it) and its private key.

Pure crypto, no file I/O: `MeshCA` decides where the PEM lives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

DEFAULT_ROOT_VALIDITY = dt.timedelta(days=3650)
SignerKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class AuthorityError(ValueError):
    """A CA certificate or key that cannot sign workload certificates; says why."""


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: SignerKey
    parents: tuple[x509.Certificate, ...] = ()  # the chain above `cert`, nearest first

    @property
    def id(self) -> str:
        """Short stable name: the first 16 hex digits of the certificate's SHA-256."""
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()[:16]

    def anchor(self) -> x509.Certificate:
        """What goes in the trust bundle: the top of the chain we were given."""
        return self.parents[-1] if self.parents else self.cert

    def presented_chain(self) -> tuple[x509.Certificate, ...]:
        """Certificates a workload sends after its leaf: every CA below the anchor."""
        return (self.cert, *self.parents)[:-1] if self.parents else ()

    def cert_pem(self) -> bytes:
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (self.cert, *self.parents)
        )

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def generate_root(
    trust_domain: str,
    now: dt.datetime | None = None,
    validity: dt.timedelta = DEFAULT_ROOT_VALIDITY,
) -> Authority:
    """A self-signed ECDSA P-256 root: CA, keyCertSign + cRLSign, path length 1."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gossamer"),
            # A fresh suffix per root, so roots of one trust domain are told apart in logs.
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"gossamer root {trust_domain} {secrets.token_hex(4)}"
            ),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def load_authority(cert_pem: bytes, key_pem: bytes) -> Authority:
    """A user-supplied CA: its certificate first, optionally followed by its chain."""
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise AuthorityError(f"CA certificate is not valid PEM: {exc}") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise AuthorityError("CA key is encrypted; supply it unencrypted (mode 0600)") from None
    except ValueError as exc:
        raise AuthorityError(f"CA key is not a valid PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise AuthorityError(f"CA key type {type(key).__name__} is not supported (use EC or RSA)")
    cert, parents = certs[0], tuple(certs[1:])
    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise AuthorityError("CA key does not match the first certificate in the CA file")
    _require_ca(cert)
    for child, parent in zip((cert, *parents), parents, strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise AuthorityError(
                f"CA chain is broken: {child.subject.rfc4514_string()} is not issued by "
                f"{parent.subject.rfc4514_string()}"
            ) from None
    return Authority(cert, key, parents)


def _require_ca(cert: x509.Certificate) -> None:
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise AuthorityError(f"CA certificate lacks a required extension: {exc}") from None
    if not basic.ca:
        raise AuthorityError("CA certificate has basicConstraints CA:false; it cannot sign")
    if not usage.key_cert_sign:
        raise AuthorityError("CA certificate lacks keyUsage keyCertSign; it cannot sign")


def _spki(public: CertificatePublicKeyTypes) -> bytes:
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
