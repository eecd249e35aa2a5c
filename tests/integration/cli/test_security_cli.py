"""`gossamer token`, `ca`, `identity`, `check` and the CLI's credentials, against a real
`gossamer control` (its admin credential found through GOSSAMER_DATA_DIR, or none)."""

from __future__ import annotations

import httpx
from cli_harness import Cli
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SERVICE_YAML = """apiVersion: gossamer.dev/v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {}
"""


def without_credentials(cli: Cli) -> Cli:
    env = {k: v for k, v in cli.env.items() if k not in ("GOSSAMER_DATA_DIR", "GOSSAMER_TOKEN")}
    env["GOSSAMER_DATA_DIR"] = "/nonexistent"
    return Cli(cli.control, env)


def test_no_credential_is_refused_with_a_clear_message(cli: Cli) -> None:
    result = without_credentials(cli)("services")
    assert result.code == 1
    assert "authentication required" in result.err and "Unauthorized" in result.err


def test_token_lifecycle_and_operator_roles(cli: Cli) -> None:
    created = cli("token", "create", "--service", "reviews", "--ttl", "10m")
    assert created.code == 0, created.err
    token = created.out.strip()
    assert token.startswith("gst_") and "#sha256:" in token
    token_id = token[4:].split(".", 1)[0]
    listing = cli("token", "list")
    assert token_id in listing.out and "proxy" in listing.out and "default/reviews" in listing.out
    assert token.split("#")[0].split(".", 1)[1] not in listing.out  # the secret never again
    assert cli("token", "revoke", token_id).code == 0
    assert token_id not in cli("token", "list").out
    assert cli("token", "revoke", token_id).code == 1

    viewer = cli("token", "create", "--operator", "alice", "--role", "viewer").out.strip()
    bob = without_credentials(cli)
    reads = bob("--token", viewer, "services", control=True)
    assert reads.code == 0, reads.err
    env_cli = Cli(cli.control, {**bob.env, "GOSSAMER_TOKEN": viewer})
    writes = env_cli("apply", "-f", "-", stdin=SERVICE_YAML)
    assert writes.code == 1 and "Forbidden" in writes.err, writes.err
    assert cli("apply", "-f", "-", stdin=SERVICE_YAML).code == 0  # the admin may
    assert cli("token", "create", "--service", "x", "--operator", "y").code == 2


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_ca_show_rotate_identity_and_check(cli: Cli) -> None:
    shown = cli("ca", "show")
    assert shown.code == 0, shown.err
    assert "trust domain: cluster.local" in shown.out and "phase: stable" in shown.out
    before = cli("ca", "show", "-o", "json").out
    # A proxy with a certificate, reporting the bundle it uses through its heartbeat.
    token = cli("token", "create", "--service", "reviews").out.strip().split("#")[0]
    with httpx.Client(base_url=cli.control, headers={"Authorization": f"Bearer {token}"}) as http:
        reg = {"service": "reviews", "address": "127.0.0.1", "port": 9000, "leaseSeconds": 60}
        http.post("/api/v1/proxies/reviews-1/register", json=reg).raise_for_status()
        cert = http.post("/api/v1/proxies/reviews-1/certificate", json={"csr": _csr()})
        assert cert.status_code == 200
        identity = cli("identity", "reviews")
        assert identity.code == 0, identity.err
        assert "reviews-1" in identity.out and "spiffe://cluster.local/ns/default/sa/reviews" in (
            identity.out
        )
        assert cli("check").code == 0  # no connected proxy is behind
    rotated = cli("ca", "rotate", "--wait", "10")
    assert rotated.code == 0, rotated.err
    after = cli("ca", "show", "-o", "json").out
    assert '"phase": "stable"' in after and after != before
    assert cli("ca", "rotate", "sideways").code == 2
