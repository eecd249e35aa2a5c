"""Certificates for the peers' TLS sidecar pairs: one bench CA, a server and a client cert.

ECDSA P-256 throughout, like gossamer's mesh CA issues; the peers are told to speak TLS 1.3
only with OpenSSL's default suites, which is what gossamer's sidecars negotiate too.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "bench-app.inbound"


@dataclass(frozen=True)
class BenchCerts:
    ca: Path  # CA certificate (PEM)
    server_cert: Path
    server_key: Path
    server_pem: Path  # cert + key in one file (HAProxy's `crt`)
    client_cert: Path
    client_key: Path
    client_pem: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    common_name: str,
    usage: x509.ObjectIdentifier,
    now: datetime.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName(common_name),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def write_certs(directory: Path) -> BenchCerts:
    """A fresh CA, server and client certificate under `directory` (readable by nginx workers)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("gossamer bench CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server, server_key = _issue(ca_key, ca_name, SERVER_NAME, ExtendedKeyUsageOID.SERVER_AUTH, now)
    client, client_key = _issue(
        ca_key, ca_name, "bench-client.outbound", ExtendedKeyUsageOID.CLIENT_AUTH, now
    )
    pem = serialization.Encoding.PEM
    files = {
        "ca.pem": ca.public_bytes(pem),
        "server.crt": server.public_bytes(pem),
        "server.key": _key_pem(server_key),
        "server.pem": server.public_bytes(pem) + _key_pem(server_key),
        "client.crt": client.public_bytes(pem),
        "client.key": _key_pem(client_key),
        "client.pem": client.public_bytes(pem) + _key_pem(client_key),
    }
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o644)  # a throwaway bench CA; nginx's unprivileged worker reads them
    return BenchCerts(*(directory / name for name in files))
