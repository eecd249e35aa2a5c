"""Pure authorization decisions and credential storage (0600 files, digests only)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gossamer.control.auth import Principal, bearer_token, may_call
from gossamer.control.ca import TokenScope
from gossamer.control.credentials import ADMIN_FILE, TOKENS_FILE, Credentials, ca_fingerprint

ADMIN = Principal("admin", "admin")
VIEWER = Principal("bob", "viewer")
PROXY = Principal("reviews", "proxy", "default")


@pytest.mark.parametrize(
    ("principal", "method", "route", "path", "allowed"),
    [
        (ADMIN, "DELETE", "/api/v1/namespaces/{ns}/{plural}/{name}", "/api/v1/x", True),
        (VIEWER, "GET", "/api/v1/{plural}", "/api/v1/services", True),
        (VIEWER, "POST", "/api/v1/apply", "/api/v1/apply", False),
        (VIEWER, "GET", "/api/v1/tokens", "/api/v1/tokens", False),
        (VIEWER, "GET", "/api/v1/ca", "/api/v1/ca", True),
        (PROXY, "POST", "/api/v1/proxies/{id}/register", "/api/v1/proxies/r-1/register", True),
        (PROXY, "POST", "/api/v1/proxies/{id}/certificate", "/api/v1/proxies/r/certificate", True),
        (PROXY, "GET", "/api/v1/{plural}", "/api/v1/services", False),
        (PROXY, "POST", "/api/v1/apply", "/api/v1/apply", False),
        (PROXY, "POST", "/api/v1/tokens", "/api/v1/tokens", False),
        (PROXY, "GET", "/api/v1/proxies", "/api/v1/proxies", False),
        (Principal("x", "anonymous"), "GET", "/api/v1/{plural}", "/api/v1/services", False),
    ],
)
def test_may_call(principal: Principal, method: str, route: str, path: str, allowed: bool) -> None:
    assert may_call(principal, method, route, path) is allowed


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer gst_a.b", "gst_a.b"),
        ("bearer  gst_a.b ", "gst_a.b"),
        ("Basic abc", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_credentials_first_start_creates_a_private_admin_credential(tmp_path: Path) -> None:
    creds = Credentials.open(tmp_path / "credentials", now=1000.0)
    admin_file = tmp_path / "credentials" / ADMIN_FILE
    tokens_file = tmp_path / "credentials" / TOKENS_FILE
    for path in (admin_file, tokens_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "credentials").stat().st_mode) == 0o700
    admin = admin_file.read_text().strip()
    assert creds.verify(admin, 1001.0) == TokenScope.operator("admin", "admin")
    # Only digests are stored: the secret part appears nowhere in the records file.
    secret = admin.split(".", 1)[1]
    assert secret not in tokens_file.read_text()
    # A second start keeps the same admin credential and every record.
    text, record = creds.issue(TokenScope.proxy("default", "reviews"), 60, 1000.0)
    again = Credentials.open(tmp_path / "credentials", now=1002.0)
    assert again.verify(admin, 1002.0) is not None
    assert again.verify(text, 1002.0) == TokenScope.proxy("default", "reviews")
    assert again.verify(text, 1061.0) is None  # expired
    assert again.revoke(record.token_id)
    assert Credentials.open(tmp_path / "credentials", 1003.0).verify(text, 1003.0) is None
    assert [r["role"] for r in json.loads(tokens_file.read_text())["tokens"]] == ["admin"]


def test_fingerprint_is_the_first_certificates_hash(tmp_path: Path) -> None:
    from gossamer.control.ca import MeshCA

    ca = MeshCA.open(tmp_path / "ca", "cluster.local")
    bundle = ca.trust_bundle()
    fingerprint = ca_fingerprint(bundle)
    assert fingerprint.startswith("sha256:") and len(fingerprint) == 7 + 64
    other = MeshCA.open(tmp_path / "ca2", "cluster.local").trust_bundle()
    assert ca_fingerprint(other) != fingerprint
    assert ca_fingerprint(bundle + other) == fingerprint
