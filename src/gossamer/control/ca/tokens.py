"""Bootstrap tokens: random 256-bit secrets, kept only as SHA-256 digests with their scope.

Token text is `gst_<id>.<secret>`: the id (public, 8 random bytes) finds the record, the
secret is compared by digest in constant time. A leaked record (digest) does not let anyone
present the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

PREFIX = "gst_"
MAX_TOKEN_CHARS = 256
Role = Literal["proxy", "admin", "viewer"]


@dataclass(frozen=True, slots=True)
class TokenScope:
    """A proxy's service+namespace, or an operator's name with role admin or viewer."""

    role: Role
    name: str  # the service for a proxy, the operator's name otherwise
    namespace: str | None = None  # proxies only

    @classmethod
    def proxy(cls, namespace: str, service: str) -> TokenScope:
        return cls("proxy", service, namespace)

    @classmethod
    def operator(cls, name: str, role: Literal["admin", "viewer"]) -> TokenScope:
        return cls(role, name)


@dataclass(frozen=True, slots=True)
class BootstrapToken:
    token_id: str
    digest: str  # hex SHA-256 of the secret part
    scope: TokenScope
    expires_at: float  # epoch seconds

    @classmethod
    def issue(cls, scope: TokenScope, ttl_seconds: float, now: float) -> tuple[str, BootstrapToken]:
        """(token text to hand out once, record to store). The text is never stored."""
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        token_id = secrets.token_hex(8)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        record = cls(token_id, _digest(secret), scope, now + ttl_seconds)
        return f"{PREFIX}{token_id}.{secret}", record

    def verify(self, token_text: str, now: float) -> bool:
        """True only for this token's exact secret, before expiry."""
        parsed = parse_token(token_text)
        if parsed is None:
            return False
        token_id, secret = parsed
        # Compare both parts always, so timing does not tell which one was wrong.
        same_id = hmac.compare_digest(token_id.encode(), self.token_id.encode())
        same_secret = hmac.compare_digest(_digest(secret).encode(), self.digest.encode())
        return same_id and same_secret and now < self.expires_at

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.token_id,
            "sha256": self.digest,
            "role": self.scope.role,
            "name": self.scope.name,
            "namespace": self.scope.namespace,
            "expiresAt": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> BootstrapToken:
        role = data["role"]
        if role not in ("proxy", "admin", "viewer"):
            raise ValueError(f"token role {role!r} is not proxy, admin or viewer")
        namespace = data.get("namespace")
        scope = TokenScope(role, str(data["name"]), None if namespace is None else str(namespace))
        expires = data["expiresAt"]
        if not isinstance(expires, int | float):
            raise ValueError("token expiresAt must be a number")
        return cls(str(data["id"]), str(data["sha256"]), scope, float(expires))


class TokenRegistry:
    """The stored records, looked up by id; `verify` is what the API's auth calls."""

    def __init__(self, records: list[BootstrapToken] | None = None) -> None:
        self._records = {r.token_id: r for r in records or ()}

    def add(self, record: BootstrapToken) -> None:
        self._records[record.token_id] = record

    def revoke(self, token_id: str) -> bool:
        return self._records.pop(token_id, None) is not None

    def verify(self, token_text: str, now: float) -> TokenScope | None:
        parsed = parse_token(token_text)
        record = self._records.get(parsed[0]) if parsed else None
        return record.scope if record is not None and record.verify(token_text, now) else None

    def prune(self, now: float) -> int:
        expired = [tid for tid, r in self._records.items() if r.expires_at <= now]
        for tid in expired:
            del self._records[tid]
        return len(expired)

    def records(self) -> list[BootstrapToken]:
        return list(self._records.values())


def parse_token(token_text: object) -> tuple[str, str] | None:
    """(id, secret) of well-formed token text, None for anything else (never raises)."""
    if not isinstance(token_text, str) or len(token_text) > MAX_TOKEN_CHARS:
        return None
    if not token_text.startswith(PREFIX):
        return None
    token_id, dot, secret = token_text[len(PREFIX) :].partition(".")
    if not dot or not token_id or not secret:
        return None
    return token_id, secret


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
