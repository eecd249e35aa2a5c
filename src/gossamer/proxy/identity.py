"""The sidecar's workload identity: its own key, CSRs, the current SVID and trust bundle,
and when to renew (pure functions of `now`).

This is the only sidecar module that imports `cryptography` (~11 MB resident): import it
only when mTLS is on. The private key is generated here and never leaves the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

RENEW_FRACTION = 0.7  # renew at 70 % of the certificate's life...
RENEW_JITTER = 0.1  # ...give or take 5 %, so a fleet issued together does not renew together
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0


class IdentityError(ValueError):
    """An issued certificate that does not fit this workload (wrong key, no SPIFFE ID...)."""


@dataclass(frozen=True, slots=True)
class Svid:
    spiffe_id: str
    not_before: float  # epoch seconds
    not_after: float
    cert_chain_pem: bytes  # leaf first, then intermediates

    @property
    def lifetime(self) -> float:
        return self.not_after - self.not_before


class WorkloadIdentity:
    """Holds the key (ECDSA P-256), the current SVID and the bundle that verifies peers."""

    def __init__(self, expected_id: str | None = None) -> None:
        self.expected_id = expected_id
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._public_der = _spki(self._key.public_key())
        self.svid: Svid | None = None
        self.bundle_pem: bytes | None = None

    def csr_pem(self) -> bytes:
        """A CSR over our key. The CA ignores its names; the SAN is a hint for humans."""
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gossamer")])
        )
        if self.expected_id:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(self.expected_id)]),
                critical=False,
            )
        csr = builder.sign(self._key, hashes.SHA256())
        return csr.public_bytes(serialization.Encoding.PEM)

    def install(self, cert_chain_pem: bytes, bundle_pem: bytes) -> Svid:
        """Accept an SVID from the CA (raises IdentityError if it does not fit; the old one
        stays in place)."""
        svid = parse_svid(cert_chain_pem)
        leaf = x509.load_pem_x509_certificate(cert_chain_pem)
        if _spki(leaf.public_key()) != self._public_der:
            raise IdentityError("issued certificate is not for this workload's key")
        if self.expected_id is not None and svid.spiffe_id != self.expected_id:
            raise IdentityError(f"issued identity {svid.spiffe_id}, expected {self.expected_id}")
        try:
            if not x509.load_pem_x509_certificates(bundle_pem):
                raise ValueError("empty")
        except ValueError as exc:
            raise IdentityError(f"trust bundle is not valid PEM: {exc}") from None
        self.svid, self.bundle_pem = svid, bundle_pem
        return svid

    def key_pem(self) -> bytes:
        """For building SSL contexts in this process (proxy/tls.py); never sent anywhere."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def tls_material(self) -> tuple[bytes, bytes, bytes]:
        """(cert chain, key, bundle) for `MeshTLS(...)` / `MeshTLS.update(...)`."""
        if self.svid is None or self.bundle_pem is None:
            raise IdentityError("no SVID installed yet")
        return self.svid.cert_chain_pem, self.key_pem(), self.bundle_pem


def parse_svid(cert_chain_pem: bytes) -> Svid:
    try:
        leaf = x509.load_pem_x509_certificates(cert_chain_pem)[0]
        uris = leaf.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.UniformResourceIdentifier)
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise IdentityError(f"not an X.509-SVID: {exc}") from None
    if len(uris) != 1 or not uris[0].startswith("spiffe://"):
        raise IdentityError(f"an X.509-SVID has exactly one spiffe:// URI SAN, got {uris}")
    if "/" not in uris[0][len("spiffe://") :]:
        raise IdentityError(f"{uris[0]} names a trust domain, not a workload")
    try:
        is_ca = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if is_ca:
        raise IdentityError("a CA certificate is not a workload SVID")
    return Svid(
        uris[0],
        leaf.not_valid_before_utc.timestamp(),
        leaf.not_valid_after_utc.timestamp(),
        cert_chain_pem,
    )


def _spki(public: CertificatePublicKeyTypes) -> bytes:
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# Timing: pure functions, `now` and randomness passed in ---------------------------------


def renew_at(not_before: float, not_after: float, rand: float) -> float:
    """notBefore + (70 % ± 5 %) of the life; `rand` in [0, 1)."""
    fraction = RENEW_FRACTION + (rand - 0.5) * RENEW_JITTER
    return not_before + (not_after - not_before) * fraction


def retry_delay(failures: int, rand: float) -> float:
    """Back-off after `failures` consecutive failures (≥ 1): exponential, capped, with
    equal jitter (half fixed, so retries never bunch at zero)."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** min(failures - 1, 30))
    return ceiling / 2 + rand * ceiling / 2


State = Literal["missing", "valid", "renewing", "expired"]


class RenewalSchedule:
    """When to ask for a new SVID, and whether the current one may still be served.

    Serve until notAfter, then fail closed: no mTLS connections rather than an expired
    certificate. Failed renewals back off, but the next try is never scheduled after expiry.
    """

    __slots__ = ("failures", "next_attempt", "not_after", "not_before")

    def __init__(self) -> None:
        self.not_before: float | None = None
        self.not_after: float | None = None
        self.next_attempt = 0.0  # no SVID yet: ask at once
        self.failures = 0

    def on_issued(self, svid: Svid, rand: float) -> None:
        self.not_before, self.not_after = svid.not_before, svid.not_after
        self.failures = 0
        self.next_attempt = renew_at(svid.not_before, svid.not_after, rand)

    def on_failure(self, now: float, rand: float) -> None:
        self.failures += 1
        attempt = now + retry_delay(self.failures, rand)
        if self.not_after is not None and now < self.not_after:
            attempt = min(attempt, self.not_after)
        self.next_attempt = attempt

    def due(self, now: float) -> bool:
        return now >= self.next_attempt

    def seconds_until_due(self, now: float) -> float:
        return max(0.0, self.next_attempt - now)

    def can_serve(self, now: float) -> bool:
        return self.not_after is not None and now < self.not_after

    def state(self, now: float) -> State:
        if self.not_after is None:
            return "missing"
        if now >= self.not_after:
            return "expired"
        return "renewing" if now >= self.next_attempt or self.failures else "valid"
