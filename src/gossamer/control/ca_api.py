"""Security endpoints: SVID signing, trust bundle, CA status and rotation, tokens, login.

POST   /api/v1/proxies/{id}/certificate  {"csr": PEM}   proxy token → its own SVID
GET    /api/v1/trust-bundle                              bundle + fingerprint
GET    /api/v1/ca                                        status, phase, pending proxies
POST   /api/v1/ca/rotation               {"step"}       begin | switch | finish
GET    /api/v1/identities[?service=&namespace=]          certificates proxies hold
GET    /api/v1/tokens                                    records (never secrets)
POST   /api/v1/tokens                    {service|operator, ...} → text, shown once
DELETE /api/v1/tokens/{id}
POST   /api/v1/login                     {"token"}      dashboard session cookie
POST   /api/v1/logout
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from gossamer.control.auth import (
    AUTHENTICATOR_KEY,
    SESSION_COOKIE,
    SESSION_SECONDS,
    principal_of,
)
from gossamer.control.ca import CsrError, RotationError, TokenScope, spiffe_id
from gossamer.control.documents import rfc3339
from gossamer.control.errors import ApiError, json_response, read_json_object
from gossamer.control.security import Security
from gossamer.model.common import check_dns_label

MAX_TOKEN_TTL = 365 * 86400.0
DEFAULT_TOKEN_TTL = 3600.0
MAX_CSR_CHARS = 16 * 1024


def parse_ttl(value: Any, default: float) -> float:
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 1 <= value <= MAX_TOKEN_TTL
    ):
        raise ApiError(400, f"ttlSeconds must be a number from 1 to {MAX_TOKEN_TTL:.0f}")
    return float(value)


def _label(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"{what} must be a string")
    try:
        return check_dns_label(value)
    except ValueError as exc:
        raise ApiError(400, f"{what} {value!r}: {exc}") from None


class SecurityApi:
    def __init__(self, security: Security, connected: Callable[[], list[str]]) -> None:
        self.security = security
        self.connected = connected  # ids of proxies with an open stream

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/proxies/{id}/certificate", self.certificate),
            web.get("/api/v1/trust-bundle", self.trust_bundle),
            web.get("/api/v1/ca", self.show),
            web.post("/api/v1/ca/rotation", self.rotate),
            web.get("/api/v1/identities", self.identities),
            web.get("/api/v1/tokens", self.list_tokens),
            web.post("/api/v1/tokens", self.create_token),
            web.delete("/api/v1/tokens/{token}", self.revoke_token),
            web.post("/api/v1/login", self.login),
            web.post("/api/v1/logout", self.logout),
        ]

    async def certificate(self, request: web.Request) -> web.Response:
        principal = principal_of(request)
        if principal.role != "proxy" or principal.namespace is None:
            raise ApiError(403, "certificates are signed only for a sidecar's credential")
        body = await read_json_object(request)
        csr = body.get("csr")
        if not isinstance(csr, str) or not csr or len(csr) > MAX_CSR_CHARS:
            raise ApiError(400, f"csr must be a PEM string of at most {MAX_CSR_CHARS} characters")
        # The identity comes from the credential's scope; whatever the CSR names is ignored.
        workload = spiffe_id(self.security.ca.trust_domain, principal.namespace, principal.name)
        try:
            chain, not_after = self.security.sign(
                request.match_info["id"], workload, csr.encode("ascii", "replace")
            )
        except (CsrError, ValueError) as exc:
            raise ApiError(400, f"csr: {exc}") from None
        return json_response(
            {
                "certificate": chain.decode("ascii"),
                "bundle": self.security.bundle_pem().decode("ascii"),
                "spiffeId": workload,
                "notAfter": rfc3339(not_after),
                "signer": self.security.signer(),
            }
        )

    async def trust_bundle(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "trustDomain": self.security.ca.trust_domain,
                "bundle": self.security.bundle_pem().decode("ascii"),
                "fingerprint": self.security.fingerprint(),
            }
        )

    async def show(self, request: web.Request) -> web.Response:
        return json_response(self.security.describe(self.connected()))

    async def rotate(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        step = body.get("step")
        if step not in ("begin", "switch", "finish"):
            raise ApiError(400, "step must be begin, switch or finish")
        pending = self.security.pending(self.connected())
        if pending and not body.get("force", False):
            raise ApiError(
                409,
                f"{len(pending)} proxies have not caught up with the current step yet: "
                + ", ".join(pending[:10]),
                reason="RotationPending",
            )
        try:
            self.security.rotate(step)
        except (RotationError, ValueError) as exc:
            raise ApiError(409, str(exc), reason="RotationOutOfOrder") from None
        return json_response(self.security.describe(self.connected()))

    async def identities(self, request: web.Request) -> web.Response:
        service = request.query.get("service")
        namespace = request.query.get("namespace", "default")
        connected = set(self.connected())
        items = []
        for held in sorted(self.security.held.values(), key=lambda h: h.proxy_id):
            if service is not None and not held.spiffe_id.endswith(f"/ns/{namespace}/sa/{service}"):
                continue
            items.append({**held.to_json(), "connected": held.proxy_id in connected})
        return json_response({"items": items, "bundleHash": self.security.bundle_hash()})

    async def list_tokens(self, request: web.Request) -> web.Response:
        items = []
        for record in self.security.credentials.records():
            scope = record.scope
            items.append(
                {
                    "id": record.token_id,
                    "role": scope.role,
                    "name": scope.name,
                    "namespace": scope.namespace,
                    "expiresAt": rfc3339(record.expires_at),
                }
            )
        return json_response({"items": items})

    async def create_token(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        ttl = parse_ttl(body.get("ttlSeconds"), DEFAULT_TOKEN_TTL)
        if body.get("service") is not None:
            namespace = _label(body.get("namespace", "default"), "namespace")
            scope = TokenScope.proxy(namespace, _label(body["service"], "service"))
        elif body.get("operator") is not None:
            role = body.get("role", "viewer")
            if role not in ("admin", "viewer"):
                raise ApiError(400, "role must be admin or viewer")
            scope = TokenScope.operator(_label(body["operator"], "operator"), role)
        else:
            raise ApiError(400, "give service (a sidecar token) or operator (a named credential)")
        now = self.security.wall_clock()
        text, record = self.security.credentials.issue(scope, ttl, now)
        if scope.role == "proxy":
            text = f"{text}#{self.security.fingerprint()}"
        return json_response(
            {
                "id": record.token_id,
                "token": text,
                "role": scope.role,
                "name": scope.name,
                "namespace": scope.namespace,
                "expiresAt": rfc3339(record.expires_at),
            },
            status=201,
        )

    async def revoke_token(self, request: web.Request) -> web.Response:
        token_id = request.match_info["token"]
        if not self.security.credentials.revoke(token_id):
            raise ApiError(404, f"no token {token_id!r}")
        return json_response({"ok": True})

    async def login(self, request: web.Request) -> web.Response:
        authenticator = request.app.get(AUTHENTICATOR_KEY)
        if authenticator is None:
            raise ApiError(404, "this control plane has no credentials to log in with")
        body = await read_json_object(request)
        token = body.get("token")
        if not isinstance(token, str):
            raise ApiError(400, "token must be a string")
        session_id, session = authenticator.login(token)
        response = json_response(
            {
                "name": session.principal.name,
                "role": session.principal.role,
                "csrfToken": session.csrf,
            }
        )
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(SESSION_SECONDS),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        authenticator = request.app.get(AUTHENTICATOR_KEY)
        if authenticator is not None:
            authenticator.sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        response = json_response({"ok": True})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response
