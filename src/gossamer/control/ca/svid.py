"""X.509-SVID issuance from a CSR, by the SPIFFE X.509-SVID spec. Pure crypto, no I/O.

The CSR only proves possession of a key: its subject and every extension it asks for are
ignored. The identity comes from the caller, who authenticated the workload.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gossamer.control.ca.authority import Authority
from gossamer.control.ca.spiffe import parse_spiffe_id

DEFAULT_TTL_SECONDS = 24 * 3600
MAX_TTL_SECONDS = 90 * 24 * 3600
# notBefore is set this far back (at most the TTL itself) so peers with slow clocks accept it.
CLOCK_SKEW_SECONDS = 60
MAX_CSR_BYTES = 16 * 1024
_ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1)


class CsrError(ValueError):
    """The CSR is malformed, badly signed or uses an unaccepted key; says which."""


def load_csr(csr_pem: bytes | str) -> x509.CertificateSigningRequest:
    """Parse and check a CSR: valid PEM, valid self-signature, an accepted key type."""
    data = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
    if len(data) > MAX_CSR_BYTES:
        raise CsrError(f"CSR is larger than {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise CsrError(f"CSR is not a valid PEM certificate request: {exc}") from None
    try:
        valid = csr.is_signature_valid
        key = csr.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CsrError(f"CSR cannot be checked: {exc}") from None
    if not valid:
        raise CsrError("CSR signature does not verify: the requester does not hold the key")
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _ALLOWED_CURVES):
            raise CsrError(f"CSR key curve {key.curve.name} is not accepted (P-256 or P-384)")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CsrError(f"CSR RSA key has {key.key_size} bits; at least 2048 are required")
    else:
        raise CsrError(f"CSR key type {type(key).__name__} is not accepted (use ECDSA P-256)")
    return csr


def issue_svid(
    authority: Authority,
    csr_pem: bytes | str,
    spiffe_id: str,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    now: dt.datetime | None = None,
) -> bytes:
    """Sign `csr_pem` as `spiffe_id`; returns the leaf PEM followed by intermediates."""
    csr = load_csr(csr_pem)
    sid = parse_spiffe_id(spiffe_id)
    if not sid.path:
        raise ValueError(f"{spiffe_id!r} names a trust domain, not a workload")
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds {ttl_seconds} must be between 1 and {MAX_TTL_SECONDS}")
    now = now or dt.datetime.now(dt.UTC)
    not_before = now - dt.timedelta(seconds=min(CLOCK_SKEW_SECONDS, ttl_seconds))
    # Never outlive the signer: a leaf valid past its CA's expiry would fail anyway.
    not_after = min(now + dt.timedelta(seconds=ttl_seconds), authority.cert.not_valid_after_utc)
    public = csr.public_key()
    issuer_ski = x509.SubjectKeyIdentifier.from_public_key(authority.cert.public_key())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gossamer")]))
        .issuer_name(authority.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(str(sid))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    chain = (leaf, *authority.presented_chain())
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)


def _leaf_key_usage() -> x509.KeyUsage:
    # ECDSA keys sign (ECDHE handshakes); keyEncipherment is for RSA key transport only.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
