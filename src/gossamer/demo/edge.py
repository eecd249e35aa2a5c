"""The demo's edge: `gossamer gateway` in front of the mesh.

- `/` goes to the frontend, rate limited per client IP (RateLimitPolicy);
- `/api/reviews/<n>` goes to reviews (as `/reviews/<n>`) and needs a JWT (AuthPolicy with an inline JWKS of a key
  made at start; the banner prints a token signed with it).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

EDGE_PORT = 18080  # preferred; another free port when taken
ISSUER = "https://gossamer.demo"
RATE = 20  # requests per minute per client IP on the frontend route


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DemoIssuer:
    """An Ed25519 key for the demo's tokens (never leaves the demo's process)."""

    def __init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()

    def jwks(self) -> str:
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return json.dumps(
            {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "demo", "x": _b64(raw)}]}
        )

    def token(self, subject: str = "demo-user", seconds: int = 24 * 3600) -> str:
        header = {"alg": "EdDSA", "typ": "JWT", "kid": "demo"}
        claims = {"iss": ISSUER, "aud": "edge", "sub": subject, "exp": int(time.time()) + seconds}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        return f"{signing}.{_b64(self.key.sign(signing.encode()))}"


def edge_documents(issuer: DemoIssuer) -> list[dict[str, Any]]:
    def doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": name, "namespace": "default"}
        return {"apiVersion": "gossamer.dev/v1", "kind": kind, "metadata": meta, "spec": spec}

    parent = [{"kind": "Gateway", "name": "edge"}]
    return [
        doc("Gateway", "edge", {"listeners": [{"name": "http", "port": EDGE_PORT, "protocol": "HTTP"}]}),
        doc("HTTPRoute", "edge-frontend", {"parentRefs": parent, "rules": [
            {"backendRefs": [{"name": "frontend"}]}]}),
        doc("HTTPRoute", "edge-reviews-api", {"parentRefs": parent, "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/api/reviews"}}],
             "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                 "type": "ReplacePrefixMatch", "replacePrefixMatch": "/reviews"}}}],
             "backendRefs": [{"name": "reviews"}]}]}),
        doc("AuthPolicy", "edge-reviews-jwt", {
            "targetRefs": [{"kind": "HTTPRoute", "name": "edge-reviews-api"}],
            "jwt": [{"name": "demo", "issuer": ISSUER, "audiences": ["edge"],
                     "localJWKS": issuer.jwks(),
                     "claimToHeaders": [{"claim": "sub", "header": "x-user"}]}]}),
        doc("RateLimitPolicy", "edge-frontend-limit", {
            "targetRefs": [{"kind": "HTTPRoute", "name": "edge-frontend"}],
            "limits": [{"requests": RATE, "per": "1m", "clientKey": {"type": "ClientIP"}}]}),
    ]  # fmt: skip


def banner_lines(port: int, token: str) -> str:
    url = f"http://127.0.0.1:{port}"
    return f"""
  gateway         {url}/   (the edge: frontend, at most {RATE} requests/min per client IP)
                  curl -si {url}/
                  for i in $(seq 25); do curl -s -o /dev/null -w '%{{http_code}} ' {url}/; done; echo
                  curl -si {url}/api/reviews/1                     (401: no token)
                  curl -si -H 'Authorization: Bearer {token}' {url}/api/reviews/1
"""
