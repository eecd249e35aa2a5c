"""Authentication at the edge: JWT providers (inline or remote JWKS) and API keys.

`AuthPolicy.decide(headers, now)` is pure once every provider's keys are loaded;
`AuthPolicy.missing_keys(now)` names the key sources to (re)fetch first, and the caller
does that I/O (`KeySource.load`). Failures: 401 with `WWW-Authenticate: Bearer` (RFC
6750), 403 when the caller is known but a required claim is missing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gossamer.gateway.cors import Cors
from gossamer.gateway.jose import Expectations, Key, TokenError, parse_jwks, verify

Fetch = Callable[[str], Awaitable[bytes]]
KID_REFRESH_SECONDS = 10.0  # an unknown kid refetches a remote JWKS at most this often
FAILED_RETRY_SECONDS = 2.0


class KeySource:
    """Keys of one provider: inline (fixed) or a JWKS URL cached for `max_age` seconds."""

    def __init__(self, inline: str | None, url: str | None, max_age: float) -> None:
        self.url = url
        self.max_age = max_age
        self.keys: list[Key] | None = parse_jwks(inline) if inline is not None else None
        self.fetched_at = float("-inf")
        self.failed_at = float("-inf")
        self.kid_fetched_at = float("-inf")
        self.error = ""

    def stale(self, now: float) -> bool:
        if self.url is None:
            return False
        if now - self.failed_at < FAILED_RETRY_SECONDS:
            return False  # keep serving what we have (or refusing) instead of hammering it
        return self.keys is None or now - self.fetched_at > self.max_age

    def want_refresh_for_kid(self, now: float) -> bool:
        """An unknown kid (a rotation) refetches at once, then at most every 10 s, so
        tokens with made-up kids cannot drive fetches."""
        if self.url is None or now - self.kid_fetched_at <= KID_REFRESH_SECONDS:
            return False
        self.kid_fetched_at = now
        return True

    async def load(self, fetch: Fetch, now: float) -> None:
        assert self.url is not None
        try:
            self.keys = parse_jwks(await fetch(self.url))
            self.fetched_at = now
            self.error = ""
        except (OSError, ValueError) as exc:
            self.failed_at = now
            self.error = str(exc)[:200]


@dataclass(frozen=True)
class Provider:
    name: str
    expect: Expectations
    source: KeySource
    claim_headers: tuple[tuple[str, bytes], ...]  # (claim, header name)


@dataclass
class Decision:
    status: int  # 0: allowed
    reason: str = ""
    extra: bytes = b""  # header lines for the error answer
    add: list[tuple[bytes, bytes]] = field(default_factory=list)  # request headers to add
    claims: Mapping[str, Any] = field(default_factory=dict)
    retry_kid: KeySource | None = None  # refetch this source, then decide again


def _challenge(error: str = "", description: str = "") -> bytes:
    value = b'Bearer realm="gossamer"'
    if error:
        value += b', error="%s", error_description="%s"' % (
            error.encode(),
            description.replace('"', "'").encode("ascii", "replace"),
        )
    return b"www-authenticate: " + value + b"\r\n"


def _claim_text(value: Any) -> bytes | None:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        return None
    raw = text.encode("utf-8", "replace")
    return None if any(c < 0x20 or c == 0x7F for c in raw) else raw


class AuthPolicy:
    def __init__(self, spec: Mapping[str, Any], seconds: Callable[[str], float]) -> None:
        self.providers = tuple(
            Provider(
                p["name"],
                Expectations(
                    p.get("issuer"),
                    tuple(p.get("audiences") or ()),
                    seconds(p.get("leeway", "30s")),
                ),
                KeySource(
                    p.get("localJWKS"), p.get("remoteJWKS"), seconds(p.get("jwksMaxAge", "5m"))
                ),
                tuple((c["claim"], c["header"].encode()) for c in p.get("claimToHeaders") or ()),
            )
            for p in spec.get("jwt") or ()
        )
        api = spec.get("apiKey") or None
        self.api_header = api["header"].encode() if api else None
        self.api_name_header = (api.get("forwardNameHeader") or "").encode() if api else b""
        self.api_keys = {k["sha256"]: k["name"] for k in api["keys"]} if api else {}
        self.api_headers = frozenset({self.api_header} if self.api_header else ())
        self.cors = Cors(spec["cors"]) if spec.get("cors") else None
        self.requires_credentials = bool(self.providers or self.api_keys)
        self.require = {k: tuple(v) for k, v in (spec.get("requireClaims") or {}).items()}
        # Headers we set: a client must never get to send them itself.
        names = {h for p in self.providers for _, h in p.claim_headers}
        if self.api_name_header:
            names.add(self.api_name_header)
        self.owned_headers = frozenset(names)

    def missing_keys(self, now: float) -> list[KeySource]:
        return [p.source for p in self.providers if p.source.stale(now)]

    def decide(self, headers: Sequence[tuple[bytes, bytes]], now: float) -> Decision:
        token = api_key = None
        for name, value in headers:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                token = value[7:].strip()
            elif self.api_header is not None and name == self.api_header:
                api_key = value.strip()
        if api_key is not None and self.api_keys:
            return self._api_key(api_key)
        if token is None or not self.providers:
            return Decision(401, "unauthenticated", _challenge())
        return self._jwt(token.decode("latin-1"), now)

    def _api_key(self, key: bytes) -> Decision:
        digest = hashlib.sha256(key).hexdigest()
        for known, name in self.api_keys.items():
            if hmac.compare_digest(known, digest):
                add = [(self.api_name_header, name.encode())] if self.api_name_header else []
                return Decision(0, add=add)
        return Decision(401, "bad_api_key", _challenge("invalid_token", "unknown API key"))

    def _jwt(self, token: str, now: float) -> Decision:
        first_error = ""
        for p in self.providers:
            keys = p.source.keys
            if keys is None:
                first_error = first_error or "signing keys unavailable"
                continue
            try:
                claims = verify(token, keys, p.expect, now)
            except TokenError as exc:
                if exc.args[0] == "no key for this token" and p.source.want_refresh_for_kid(now):
                    return Decision(401, "unknown_kid", retry_kid=p.source)
                first_error = first_error or str(exc.args[0])
                continue
            return self._allowed(p, claims)
        return Decision(401, "bad_token", _challenge("invalid_token", first_error))

    def _allowed(self, p: Provider, claims: Mapping[str, Any]) -> Decision:
        for claim, allowed in self.require.items():
            value = claims.get(claim)
            values = value if isinstance(value, list) else str(value or "").split()
            if not any(v in allowed for v in values if isinstance(v, str)):
                return Decision(403, "claim_refused", _challenge("insufficient_scope", claim))
        add = []
        for claim, header in p.claim_headers:
            text = _claim_text(claims.get(claim))
            if text is not None:
                add.append((header, text))
        return Decision(0, add=add, claims=claims)
