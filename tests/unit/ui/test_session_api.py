"""The dashboard's session over HTTP against a real control plane with its security on:
login sets an HttpOnly SameSite=Strict cookie, GET /api/v1/session gives the CSRF token back
to a reloaded page, and a mutating request with the cookie but without the token is refused."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator
from ipaddress import ip_address
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gossamer.control.security import Security
from gossamer.control.server import ControlServer, running
from gossamer.store.sqlite import SQLiteStore

SERVICE = {
    "apiVersion": "gossamer.dev/v1",
    "kind": "Service",
    "metadata": {"name": "reviews", "namespace": "default"},
    "spec": {"ports": [{"port": 8080}]},
}


@pytest.fixture
async def control(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    store = SQLiteStore(tmp_path / "gossamer.db")
    security = Security.open(tmp_path, "cluster.local")
    server = ControlServer(store, port=0, security=security)
    try:
        async with running(server):
            admin = (tmp_path / "credentials" / "admin.token").read_text().strip()
            yield f"http://127.0.0.1:{server.port}", admin
    finally:
        await store.close()


async def test_session_cookie_csrf_and_session_endpoint(control: tuple[str, str]) -> None:
    url, admin = control
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/api/v1/session")).status_code == 401
        assert (await http.get("/api/v1/services")).status_code == 401
        wrong = await http.post("/api/v1/login", json={"token": "gst_0000000000000000.nope"})
        assert wrong.status_code == 401 and "gossamer_session" not in wrong.cookies

        answer = await http.post("/api/v1/login", json={"token": admin})
        assert answer.status_code == 200, answer.text
        csrf = answer.json()["csrfToken"]
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie

        # A reloaded page has only the cookie: it asks for its token again.
        session = await http.get("/api/v1/session")
        assert session.status_code == 200
        assert session.json() == {"name": "admin", "role": "admin", "csrfToken": csrf, "auth": True}

        body = {"documents": [SERVICE]}
        refused = await http.post("/api/v1/apply", json=body)
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["message"]
        forged = await http.post("/api/v1/apply", json=body, headers={"X-CSRF-Token": "x" * 43})
        assert forged.status_code == 403
        assert (await http.get("/api/v1/namespaces/default/services/reviews")).status_code == 404

        applied = await http.post("/api/v1/apply", json=body, headers={"X-CSRF-Token": csrf})
        assert applied.status_code == 200, applied.text

        session_id = http.cookies["gossamer_session"]
        out = await http.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200
        http.cookies.clear()
        http.cookies.set("gossamer_session", session_id)  # the old cookie, replayed
        assert (await http.get("/api/v1/session")).status_code == 401


async def test_a_bearer_token_has_no_csrf_token(control: tuple[str, str]) -> None:
    url, admin = control
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/api/v1/session", headers={"Authorization": f"Bearer {admin}"})
        assert answer.status_code == 200
        assert answer.json() == {"name": "admin", "role": "admin", "csrfToken": None, "auth": True}


def self_signed(directory: Path) -> ssl.SSLContext:
    """A server context for 127.0.0.1 with a throwaway self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


async def test_the_session_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gossamer.db")
    security = Security.open(tmp_path, "cluster.local")
    server = ControlServer(store, port=0, security=security, ssl_context=self_signed(tmp_path))
    try:
        async with running(server):
            admin = (tmp_path / "credentials" / "admin.token").read_text().strip()
            trust = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
            async with httpx.AsyncClient(
                base_url=f"https://127.0.0.1:{server.port}", verify=trust
            ) as http:
                answer = await http.post("/api/v1/login", json={"token": admin})
                assert answer.status_code == 200, answer.text
                cookie = answer.headers["set-cookie"]
                assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        await store.close()
