"""JWT verification (RFC 7515/7519) for the gateway: RS256, ES256 and EdDSA only.

The key decides the algorithm: each JWK's type admits exactly one `alg` (RSA -> RS256,
EC P-256 -> ES256, OKP Ed25519 -> EdDSA), so a token cannot pick `none`, an HMAC over a
public key, or any other algorithm than its key's. Time is passed in (`now`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_TOKEN_BYTES = 8192  # an oversized token is refused before any decoding
MIN_RSA_BITS = 2048


class TokenError(Exception):
    """A token that does not verify; `args[0]` says why (safe to show the client)."""


def b64url_decode(text: str | bytes) -> bytes:
    raw = text.encode("ascii") if isinstance(text, str) else text
    if not raw.replace(b"-", b"").replace(b"_", b"").isalnum() and raw:
        raise TokenError("malformed base64url")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed base64url") from None


def _b64int(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("JWK integer field must be a base64url string")
    return int.from_bytes(b64url_decode(value), "big")


@dataclass(frozen=True)
class Key:
    kid: str | None
    alg: str  # the one algorithm this key verifies
    public: Any


def parse_jwk(jwk: Mapping[str, Any]) -> Key | None:
    """A verification key from a JWK, or None for keys we do not use (enc, HMAC, others)."""
    if jwk.get("use", "sig") != "sig":
        return None
    kty, given = jwk.get("kty"), jwk.get("alg")
    kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else None
    try:
        if kty == "RSA":
            public: Any = rsa.RSAPublicNumbers(_b64int(jwk["e"]), _b64int(jwk["n"])).public_key()
            if public.key_size < MIN_RSA_BITS:
                return None
            alg = "RS256"
        elif kty == "EC" and jwk.get("crv") == "P-256":
            public = ec.EllipticCurvePublicNumbers(
                _b64int(jwk["x"]), _b64int(jwk["y"]), ec.SECP256R1()
            ).public_key()
            alg = "ES256"
        elif kty == "OKP" and jwk.get("crv") == "Ed25519":
            public = ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
            alg = "EdDSA"
        else:
            return None
    except (KeyError, ValueError, TokenError, TypeError):
        return None
    if given is not None and given != alg:
        return None  # a key published for another algorithm is not ours to guess
    return Key(kid, alg, public)


def parse_jwks(text: str | bytes) -> list[Key]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"JWKS is not JSON: {exc}") from None
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise ValueError("JWKS needs a 'keys' list")
    return [k for k in (parse_jwk(j) for j in keys if isinstance(j, dict)) if k is not None]


def _verify(key: Key, signature: bytes, signed: bytes) -> bool:
    try:
        if key.alg == "RS256":
            key.public.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        elif key.alg == "ES256":
            if len(signature) != 64:  # JWS uses raw r||s, not DER
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.public.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
        else:
            key.public.verify(signature, signed)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Expectations:
    issuer: str | None
    audiences: tuple[str, ...]
    leeway: float


def verify(token: str, keys: Iterable[Key], expect: Expectations, now: float) -> dict[str, Any]:
    """The token's claims if it verifies against `keys` and `expect` at `now`."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("malformed token")
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ("RS256", "ES256", "EdDSA"):
        raise TokenError(f"algorithm {str(alg)[:20]!r} not accepted")
    if "crit" in header:
        raise TokenError("critical header parameters not supported")
    candidates = [k for k in keys if k.alg == alg and (kid is None or k.kid == kid)]
    if not candidates:
        raise TokenError("no key for this token")
    signed = f"{parts[0]}.{parts[1]}".encode("ascii")
    signature = b64url_decode(parts[2])
    if not any(_verify(k, signature, signed) for k in candidates):
        raise TokenError("bad signature")
    _check_claims(claims, expect, now)
    return claims


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"claim {name} is not a number")
    return float(value)


def _check_claims(claims: Mapping[str, Any], expect: Expectations, now: float) -> None:
    exp, nbf = _number(claims, "exp"), _number(claims, "nbf")
    if exp is None:
        raise TokenError("token has no exp")
    if now > exp + expect.leeway:
        raise TokenError("token expired")
    if nbf is not None and now + expect.leeway < nbf:
        raise TokenError("token not yet valid")
    if expect.issuer is not None and claims.get("iss") != expect.issuer:
        raise TokenError("wrong issuer")
    if expect.audiences:
        aud = claims.get("aud")
        given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(a in expect.audiences for a in given if isinstance(a, str)):
            raise TokenError("wrong audience")
