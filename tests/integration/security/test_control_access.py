"""Control-plane access over real HTTP: 401 vs 403, operator roles, sidecar token scope,
CSR → SVID with the identity from the token (never the CSR), tokens never echoed."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from gossamer.control.auth import AUTHENTICATOR_KEY
from gossamer.control.security import Security
from gossamer.control.server import ControlServer, running
from gossamer.store.sqlite import SQLiteStore

SERVICE = {"apiVersion": "gossamer.dev/v1", "kind": "Service",
           "metadata": {"name": "reviews", "namespace": "default"}, "spec": {}}  # fmt: skip


class Mesh:
    def __init__(self, server: ControlServer, data: Path) -> None:
        self.server = server
        self.base = f"http://127.0.0.1:{server.port}"
        self.admin = (data / "credentials" / "admin.token").read_text().strip()
        self.data = data

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None, **kw: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=self.base) as http:
            resp = await http.request(method, path, json=body, headers=headers, **kw)
        return resp.status_code, resp.json() if resp.content else None

    async def token(self, **body: Any) -> dict[str, Any]:
        status, answer = await self.call("POST", "/api/v1/tokens", self.admin, body)
        assert status == 201, answer
        return dict(answer)


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    security = Security.open(tmp_path, "cluster.local", cert_ttl_seconds=300)
    store = SQLiteStore(tmp_path / "gossamer.db")
    try:
        async with running(ControlServer(store, port=0, security=security)) as server:
            yield Mesh(server, tmp_path)
    finally:
        await store.close()


def csr_for(uri: str | None = None) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if uri:
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)])
        builder = builder.add_extension(san, critical=False)
    csr = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return key, csr.decode()


def sidecar_token(answer: dict[str, Any]) -> str:
    return str(answer["token"]).split("#", 1)[0]


async def test_open_paths_and_401_for_everything_else(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.base) as http:
        for path in ("/healthz", "/readyz", "/api/v1/version", "/", "/ui/api.js"):
            assert (await http.get(path)).status_code == 200, path  # "/" is the login page
    for method, path in [("GET", "/api/v1/services"), ("POST", "/api/v1/apply"),
                         ("GET", "/api/v1/proxies"), ("GET", "/api/v1/ca"),
                         ("POST", "/api/v1/proxies/x/register")]:  # fmt: skip
        status, body = await mesh.call(method, path)
        assert status == 401, (method, path, body)
    bogus = "gst_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    for token in (bogus, "not-a-token", "gst_", "x" * 2000):
        status, body = await mesh.call("GET", "/api/v1/services", token)
        assert status == 401
        assert token not in str(body)  # never echoed


async def test_viewer_reads_only_and_admin_changes_are_recorded(mesh: Mesh) -> None:
    viewer = (await mesh.token(operator="bob", role="viewer"))["token"]
    assert (await mesh.call("GET", "/api/v1/services", viewer))[0] == 200
    status, body = await mesh.call("POST", "/api/v1/apply", viewer, {"documents": [SERVICE]})
    assert status == 403, body
    assert (await mesh.call("GET", "/api/v1/tokens", viewer))[0] == 403
    assert (await mesh.call("POST", "/api/v1/tokens", viewer, {"service": "x"}))[0] == 403
    status, _ = await mesh.call("POST", "/api/v1/apply", mesh.admin, {"documents": [SERVICE]})
    assert status == 200
    # Every change is recorded with who made it (refused ones too), never a secret.
    audit = (mesh.data / "audit.log").read_text().splitlines()
    events = [json.loads(line) for line in audit]
    assert {"who": "bob", "role": "viewer", "method": "POST", "path": "/api/v1/apply",
            "status": 403} in [{k: e[k] for k in ("who", "role", "method", "path", "status")}
                               for e in events]  # fmt: skip
    assert events[-1]["who"] == "admin" and events[-1]["status"] == 200
    assert mesh.admin.split(".", 1)[1] not in "\n".join(audit)
    assert oct((mesh.data / "audit.log").stat().st_mode & 0o777) == "0o600"


async def test_sidecar_token_scope(mesh: Mesh) -> None:
    answer = await mesh.token(service="reviews", ttlSeconds=600)
    assert answer["token"].count("#sha256:") == 1  # carries the CA fingerprint
    token = sidecar_token(answer)
    reg = {"service": "reviews", "address": "127.0.0.1", "port": 9000}
    assert (await mesh.call("POST", "/api/v1/proxies/r-1/register", token, reg))[0] == 200
    other = {**reg, "service": "ratings"}
    assert (await mesh.call("POST", "/api/v1/proxies/r-2/register", token, other))[0] == 403
    # Never config, never other reads.
    for method, path, body in [("POST", "/api/v1/apply", {"documents": [SERVICE]}),
                               ("GET", "/api/v1/services", None),
                               ("GET", "/api/v1/proxies", None),
                               ("POST", "/api/v1/tokens", {"service": "reviews"}),
                               ("POST", "/api/v1/ca/rotation", {"step": "begin"})]:  # fmt: skip
        status, _ = await mesh.call(method, path, token, body)
        assert status == 403, (method, path)
    # Another service's proxy id cannot be touched with this token.
    ratings = sidecar_token(await mesh.token(service="ratings"))
    reg_ratings = {**reg, "service": "ratings"}
    assert (await mesh.call("POST", "/api/v1/proxies/q-1/register", ratings, reg_ratings))[0] == 200
    assert (await mesh.call("POST", "/api/v1/proxies/q-1/heartbeat", token, {}))[0] == 403
    assert (await mesh.call("DELETE", "/api/v1/proxies/q-1", token))[0] == 403
    status, _ = await mesh.call(
        "GET", "/api/v1/proxies/r-9/stream", token, params={"protocol": "1", "service": "ratings"}
    )
    assert status == 403


async def test_csr_for_another_service_gets_the_tokens_identity(mesh: Mesh) -> None:
    token = sidecar_token(await mesh.token(service="reviews", namespace="shop"))
    key, csr = csr_for("spiffe://cluster.local/ns/default/sa/ratings")
    status, body = await mesh.call("POST", "/api/v1/proxies/r-1/certificate", token, {"csr": csr})
    assert status == 200, body
    leaf = x509.load_pem_x509_certificate(body["certificate"].encode())
    sans = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["spiffe://cluster.local/ns/shop/sa/reviews"]
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    # An operator credential cannot get a workload certificate; garbage CSRs are 400.
    assert (await mesh.call("POST", "/api/v1/proxies/r-1/certificate", mesh.admin,
                            {"csr": csr}))[0] == 403  # fmt: skip
    for bad in ("", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", 5, "x" * 20_000):
        status, _ = await mesh.call("POST", "/api/v1/proxies/r-1/certificate", token, {"csr": bad})
        assert status == 400


async def test_expired_and_revoked_tokens_are_refused(mesh: Mesh) -> None:
    answer = await mesh.token(service="reviews", ttlSeconds=600)
    token = sidecar_token(answer)
    _, csr = csr_for()
    path = "/api/v1/proxies/r-1/certificate"
    assert (await mesh.call("POST", path, token, {"csr": csr}))[0] == 200
    assert (await mesh.call("POST", path, token, {"csr": csr}))[0] == 200  # same proxy again
    assert (await mesh.call("DELETE", f"/api/v1/tokens/{answer['id']}", mesh.admin))[0] == 200
    status, body = await mesh.call("POST", path, token, {"csr": csr})  # replayed after revoke
    assert status == 401, body
    listing = (await mesh.call("GET", "/api/v1/tokens", mesh.admin))[1]
    assert answer["id"] not in {t["id"] for t in listing["items"]}
    assert all("token" not in t and "sha256" not in t for t in listing["items"])
    # Expiry: move the control plane's clock past the token's life.
    short = sidecar_token(await mesh.token(service="reviews", ttlSeconds=5))
    clock = mesh.server.security.wall_clock if mesh.server.security else None
    assert clock is not None
    authenticator = mesh.server.app[AUTHENTICATOR_KEY] if mesh.server.app else None
    assert authenticator is not None
    authenticator.wall_clock = lambda: clock() + 10
    assert (await mesh.call("POST", path, short, {"csr": csr}))[0] == 401


async def test_secrets_never_in_logs(mesh: Mesh, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await mesh.token(service="reviews")
    await mesh.call("GET", "/api/v1/services", sidecar_token(answer) + "x")
    secret = sidecar_token(answer).split(".", 1)[1]
    assert secret not in caplog.text
    assert mesh.admin.split(".", 1)[1] not in caplog.text


async def test_dashboard_login_session_and_csrf(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.base) as http:
        assert (await http.post("/api/v1/login", json={"token": "nope"})).status_code == 401
        resp = await http.post("/api/v1/login", json={"token": mesh.admin})
        assert resp.status_code == 200
        cookie = resp.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert mesh.admin not in resp.text
        csrf = resp.json()["csrfToken"]
        assert (await http.get("/api/v1/services")).status_code == 200  # cookie
        apply = {"documents": [SERVICE]}
        assert (await http.post("/api/v1/apply", json=apply)).status_code == 403  # no CSRF
        ok = await http.post("/api/v1/apply", json=apply, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200
        await http.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
        http.cookies.clear()
        assert (await http.get("/api/v1/services")).status_code == 401
