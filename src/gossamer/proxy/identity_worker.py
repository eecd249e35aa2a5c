"""The sidecar's certificate work, run in a short-lived child process.

`cryptography` costs a sidecar ~12 MB resident for something it does once a day: make a
key and a CSR, and check the SVID the CA issued. `proxy/identity.py` runs this module as
`python -m gossamer.proxy.identity_worker`, writes one JSON request to its stdin and reads
one JSON answer from its stdout; the child then exits and its memory goes with it. The
private key travels only over those pipes, between the sidecar and its own child: it
never leaves the sidecar's process tree and never touches a disk.

Requests: {"op": "key"} → {"key": PEM}; {"op": "csr", "key", "expected_id"} → {"csr": PEM};
{"op": "check", "key", "chain", "bundle", "expected_id"} → {"spiffe_id", "not_before",
"not_after"}. Any refusal: {"error": text}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import NameOID


class Refused(ValueError):
    """The request cannot be honoured (reported to the parent as {"error": ...})."""


def new_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode("ascii")


def _load_key(key_pem: str) -> ec.EllipticCurvePrivateKey:
    key: PrivateKeyTypes = serialization.load_pem_private_key(key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise Refused("the workload key is not an ECDSA key")
    return key


def csr_pem(key_pem: str, expected_id: str | None) -> str:
    """A CSR over the key. The CA ignores its names; the SAN is a hint for humans."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gossamer")])
    )
    if expected_id:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(expected_id)]),
            critical=False,
        )
    csr = builder.sign(_load_key(key_pem), hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def check(key_pem: str, chain_pem: str, bundle_pem: str, expected_id: str | None) -> dict[str, Any]:
    """The issued SVID's facts, if it is an SVID for this key (and identity) and the bundle
    is PEM; else Refused."""
    try:
        leaf = x509.load_pem_x509_certificates(chain_pem.encode())[0]
        uris = leaf.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.UniformResourceIdentifier)
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise Refused(f"not an X.509-SVID: {exc}") from None
    if len(uris) != 1 or not uris[0].startswith("spiffe://"):
        raise Refused(f"an X.509-SVID has exactly one spiffe:// URI SAN, got {uris}")
    if "/" not in uris[0][len("spiffe://") :]:
        raise Refused(f"{uris[0]} names a trust domain, not a workload")
    try:
        is_ca = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if is_ca:
        raise Refused("a CA certificate is not a workload SVID")
    if _spki(leaf.public_key()) != _spki(_load_key(key_pem).public_key()):
        raise Refused("issued certificate is not for this workload's key")
    if expected_id is not None and uris[0] != expected_id:
        raise Refused(f"issued identity {uris[0]}, expected {expected_id}")
    try:
        if not x509.load_pem_x509_certificates(bundle_pem.encode()):
            raise ValueError("empty")
    except ValueError as exc:
        raise Refused(f"trust bundle is not valid PEM: {exc}") from None
    return {
        "spiffe_id": uris[0],
        "not_before": leaf.not_valid_before_utc.timestamp(),
        "not_after": leaf.not_valid_after_utc.timestamp(),
    }


def _spki(public: CertificatePublicKeyTypes) -> bytes:
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def answer(request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    try:
        if op == "key":
            return {"key": new_key_pem()}
        if op == "csr":
            return {"csr": csr_pem(str(request["key"]), request.get("expected_id"))}
        if op == "check":
            return check(
                str(request["key"]),
                str(request["chain"]),
                str(request["bundle"]),
                request.get("expected_id"),
            )
    except (Refused, KeyError, ValueError, TypeError) as exc:
        return {"error": str(exc) or type(exc).__name__}
    return {"error": f"unknown op {op!r}"}


def main() -> None:
    try:
        request = json.load(sys.stdin)
    except ValueError as exc:
        request = {"op": None, "why": str(exc)}
    json.dump(answer(request if isinstance(request, dict) else {}), sys.stdout)


if __name__ == "__main__":
    main()
