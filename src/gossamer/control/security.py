"""The control plane's security state: the mesh CA, credentials, what each proxy holds.

Pure bookkeeping plus the CA calls; the HTTP side is control/ca_api.py. Rotation advances
only when `pending(...)` is empty: every connected proxy reports the current bundle and,
after the signing switch, holds a certificate from the new signer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gossamer.control.ca import DEFAULT_TTL_SECONDS, MeshCA, spiffe_id
from gossamer.control.ca.files import write_private_file
from gossamer.control.ca.rotation import Phase
from gossamer.control.credentials import Credentials, ca_fingerprint

MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")


@dataclass
class HeldCertificate:
    """What a proxy holds: the last SVID we signed for it, and the bundle it reports."""

    proxy_id: str
    spiffe_id: str
    serial: str
    not_after: float
    signer: str  # id of the authority that signed it
    bundle: str = ""  # sha256 of the bundle PEM the proxy last reported using

    def to_json(self) -> dict[str, Any]:
        return {
            "proxy": self.proxy_id,
            "spiffeId": self.spiffe_id,
            "serial": self.serial,
            "notAfter": _rfc3339(self.not_after),
            "signer": self.signer,
            "bundle": self.bundle,
        }


class Security:
    def __init__(
        self,
        ca: MeshCA,
        credentials: Credentials,
        *,
        mtls: str = "STRICT",
        cert_ttl_seconds: int = DEFAULT_TTL_SECONDS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if mtls not in MTLS_MODES:
            raise ValueError(f"mtls mode {mtls!r} is not one of {', '.join(MTLS_MODES)}")
        self.ca = ca
        self.credentials = credentials
        self.mtls = mtls
        self.cert_ttl_seconds = cert_ttl_seconds
        self.wall_clock = wall_clock
        self.held: dict[str, HeldCertificate] = {}
        self.on_bundle_change: Callable[[], None] = lambda: None
        self.audit_path: Path | None = None  # <data-dir>/audit.log: who changed what
        # Opens sidecars' `/tap`: sent only on authenticated snapshot streams, presented
        # only by the control plane (tap_api.py). New at each start; sidecars get it anew.
        self.tap_secret = secrets.token_urlsafe(32)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        trust_domain: str,
        *,
        ca_cert: Path | None = None,
        ca_key: Path | None = None,
        mtls: str = "STRICT",
        cert_ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> Security:
        ca = MeshCA.open(data_dir / "ca", trust_domain, ca_cert=ca_cert, ca_key=ca_key)
        credentials = Credentials.open(data_dir / "credentials", time.time())
        security = cls(ca, credentials, mtls=mtls, cert_ttl_seconds=cert_ttl_seconds)
        security.audit_path = data_dir / "audit.log"
        return security

    def audit(self, event: dict[str, Any]) -> None:
        """Append one change (who, role, method, path, status) as a JSON line (0600 file)."""
        if self.audit_path is None:
            return
        line = json.dumps({**event, "time": _rfc3339(float(event["time"]))}) + "\n"
        fd = os.open(self.audit_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    # what the snapshot carries ------------------------------------------------------------

    def bundle_pem(self) -> bytes:
        return self.ca.trust_bundle()

    def bundle_hash(self) -> str:
        return "sha256:" + hashlib.sha256(self.bundle_pem()).hexdigest()

    def signer(self) -> str:
        return self.ca.signing_authority.id

    def fingerprint(self) -> str:
        """The CA fingerprint sidecar tokens carry: the signing root's certificate hash."""
        return ca_fingerprint(self.bundle_pem())

    def mesh_section(self) -> dict[str, Any]:
        return {
            "trustDomain": self.ca.trust_domain,
            "trustBundle": self.bundle_pem().decode("ascii"),
            "trustSigner": self.signer(),
            "mtls": self.mtls,
            "tapSecret": self.tap_secret,
        }

    # signing ------------------------------------------------------------------------------

    def sign(self, proxy_id: str, spiffe_id: str, csr_pem: bytes) -> tuple[bytes, float]:
        """(chain PEM, notAfter) for the CSR's key; records what the proxy now holds."""
        chain = self.ca.sign_csr(csr_pem, spiffe_id, self.cert_ttl_seconds)
        leaf = x509.load_pem_x509_certificate(chain)
        not_after = leaf.not_valid_after_utc.timestamp()
        held = self.held.get(proxy_id)
        self.held[proxy_id] = HeldCertificate(
            proxy_id,
            spiffe_id,
            format(leaf.serial_number, "x"),
            not_after,
            self.signer(),
            held.bundle if held is not None else "",
        )
        return chain, not_after

    def report(self, proxy_id: str, bundle: str) -> None:
        held = self.held.get(proxy_id)
        if held is not None:
            held.bundle = bundle

    # rotation -----------------------------------------------------------------------------

    def pending(self, connected: list[str]) -> list[str]:
        """Connected proxies that have not caught up with the current phase."""
        bundle, signer = self.bundle_hash(), self.signer()
        behind = []
        for proxy_id in connected:
            held = self.held.get(proxy_id)
            if held is None or held.bundle != bundle or held.signer != signer:
                behind.append(proxy_id)
        return sorted(behind)

    def rotate(self, step: str) -> None:
        """begin | switch | finish; raises RotationError out of order."""
        if step == "begin":
            self.ca.begin_rotation()
        elif step == "switch":
            self.ca.switch_signing()
        elif step == "finish":
            self.ca.finish_rotation()
        else:
            raise ValueError(f"rotation step {step!r} is not begin, switch or finish")
        self.on_bundle_change()

    def describe(self, connected: list[str]) -> dict[str, Any]:
        anchors = []
        for pem in _split_pem(self.bundle_pem()):
            cert = x509.load_pem_x509_certificate(pem)
            anchors.append(
                {
                    "fingerprint": ca_fingerprint(pem),
                    "subject": cert.subject.rfc4514_string(),
                    "notBefore": _rfc3339(cert.not_valid_before_utc.timestamp()),
                    "notAfter": _rfc3339(cert.not_valid_after_utc.timestamp()),
                }
            )
        phase: Phase = self.ca.phase
        return {
            "trustDomain": self.ca.trust_domain,
            "phase": phase,
            "signer": self.signer(),
            "bundleHash": self.bundle_hash(),
            "bundle": anchors,
            "mtls": self.mtls,
            "certTtlSeconds": self.cert_ttl_seconds,
            "pending": self.pending(connected),
            "serverTime": _rfc3339(self.wall_clock()),  # `gossamer check` measures skew
        }


def _split_pem(bundle: bytes) -> list[bytes]:
    end = b"-----END CERTIFICATE-----"
    return [part.strip() + b"\n" + end + b"\n" for part in bundle.split(end) if part.strip()]


def _rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


CONTROL_NAMESPACE = "gossamer-system"
CONTROL_SERVICE = "control"
CONTROL_CERT_TTL = 90 * 86400  # the CA's longest; a restart re-issues


def control_plane_ssl(
    security: Security, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """The API's TLS: the operator's certificate, or an SVID from the mesh CA
    (`spiffe://<td>/ns/gossamer-system/sa/control`, which sidecars check by name)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        ctx.load_cert_chain(cert_file, key_file)
        return ctx
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    identity = spiffe_id(security.ca.trust_domain, CONTROL_NAMESPACE, CONTROL_SERVICE)
    chain = security.ca.sign_csr(csr, identity, CONTROL_CERT_TTL)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with tempfile.TemporaryDirectory(prefix="gossamer-control-tls-") as tmp:  # 0700
        path = Path(tmp) / "tls.pem"
        write_private_file(path, key_pem + chain)
        ctx.load_cert_chain(path)
    return ctx
