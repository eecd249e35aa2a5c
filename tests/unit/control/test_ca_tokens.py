"""Bootstrap tokens: stored hashed, scoped, expiring, verified in constant time."""

from __future__ import annotations

import hashlib
import json

import pytest

from gossamer.control.ca import BootstrapToken, TokenRegistry, TokenScope

NOW = 1_800_000_000.0


def test_issued_token_verifies_until_expiry_and_only_its_record_is_stored() -> None:
    scope = TokenScope.proxy("default", "reviews")
    text, record = BootstrapToken.issue(scope, ttl_seconds=600, now=NOW)
    token_id, secret = text.removeprefix("gst_").split(".")
    assert record.token_id == token_id
    assert record.digest == hashlib.sha256(secret.encode()).hexdigest()
    stored = json.dumps(record.to_json())
    assert secret not in stored  # the secret itself is never kept
    assert len(secret) >= 43  # 256 bits, base64url
    assert record.verify(text, NOW)
    assert record.verify(text, NOW + 599.9)
    assert not record.verify(text, NOW + 600)
    assert BootstrapToken.from_json(json.loads(stored)) == record


def test_wrong_secret_wrong_id_and_garbage_fail() -> None:
    text, record = BootstrapToken.issue(TokenScope.proxy("default", "reviews"), 600, NOW)
    token_id, secret = text.removeprefix("gst_").split(".")
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    other_text, _ = BootstrapToken.issue(TokenScope.proxy("default", "reviews"), 600, NOW)
    for bad in (
        f"gst_{token_id}.{flipped}",
        f"gst_{token_id}.",
        f"gst_.{secret}",
        f"{token_id}.{secret}",
        other_text,
        "",
        "gst_" + "a" * 300,
        None,
        12,
    ):
        assert not record.verify(bad, NOW)  # type: ignore[arg-type]


def test_secrets_are_random() -> None:
    texts = {
        BootstrapToken.issue(TokenScope.operator("ann", "admin"), 60, NOW)[0] for _ in range(50)
    }
    assert len(texts) == 50


def test_registry_returns_the_scope_and_forgets_expired_or_revoked() -> None:
    registry = TokenRegistry()
    proxy_text, proxy = BootstrapToken.issue(TokenScope.proxy("shop", "cart"), 60, NOW)
    admin_text, admin = BootstrapToken.issue(TokenScope.operator("ann", "admin"), 3600, NOW)
    registry.add(proxy)
    registry.add(admin)
    assert registry.verify(proxy_text, NOW) == TokenScope("proxy", "cart", "shop")
    assert registry.verify(admin_text, NOW) == TokenScope("admin", "ann", None)
    assert registry.verify("gst_nope.nope", NOW) is None
    assert registry.prune(NOW + 61) == 1
    assert registry.verify(proxy_text, NOW) is None
    assert registry.revoke(admin.token_id)
    assert registry.verify(admin_text, NOW) is None
    assert not registry.revoke(admin.token_id)


def test_bad_ttl_and_bad_records_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        BootstrapToken.issue(TokenScope.proxy("a", "b"), 0, NOW)
    _, record = BootstrapToken.issue(TokenScope.proxy("a", "b"), 10, NOW)
    data = record.to_json()
    with pytest.raises(ValueError, match="role"):
        BootstrapToken.from_json({**data, "role": "root"})
    with pytest.raises(ValueError, match="expiresAt"):
        BootstrapToken.from_json({**data, "expiresAt": "soon"})
