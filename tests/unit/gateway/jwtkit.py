"""Minting real JWTs in tests: RSA, P-256 and Ed25519 keys, their JWKs, signed tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class SigningKey:
    def __init__(self, alg: str, kid: str) -> None:
        self.alg, self.kid = alg, kid
        if alg == "RS256":
            self.key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            self.key = ec.generate_private_key(ec.SECP256R1())
        else:
            self.key = ed25519.Ed25519PrivateKey.generate()

    def jwk(self) -> dict[str, Any]:
        pub = self.key.public_key()
        if self.alg == "RS256":
            nums = pub.public_numbers()
            return {
                "kty": "RSA",
                "kid": self.kid,
                "alg": "RS256",
                "n": _int(nums.n),
                "e": _int(nums.e),
            }
        if self.alg == "ES256":
            nums = pub.public_numbers()
            return {"kty": "EC", "crv": "P-256", "kid": self.kid,
                    "x": b64(nums.x.to_bytes(32, "big")), "y": b64(nums.y.to_bytes(32, "big"))}  # fmt: skip
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": b64(raw)}

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        head = {"alg": self.alg, "typ": "JWT", "kid": self.kid, **(header or {})}
        signing = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
        data = signing.encode()
        if self.alg == "RS256":
            sig = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        elif self.alg == "ES256":
            r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = self.key.sign(data)
        return f"{signing}.{b64(sig)}"


def jwks(*keys: SigningKey) -> str:
    return json.dumps({"keys": [k.jwk() for k in keys]})


def unsigned(claims: dict[str, Any]) -> str:
    head = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{b64(json.dumps(claims).encode())}."


def hs256_with(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    """The key-confusion attack: HMAC keyed with the RSA public key's PEM."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    signing = f"{head}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(mac)}"
