"""The one place API requests are authenticated and coarsely authorised.

Callers present `Authorization: Bearer gst_...` (an operator credential, role admin or
viewer, or a sidecar's token scoped to one service), or the dashboard's session cookie
(plus `X-CSRF-Token` on anything that changes state). Decisions are pure functions of the
principal and the request line (`may_call`); the per-proxy scope checks (register only
your own service, touch only your own proxy ids) need the body or the registry and live in
`check_proxy_scope`.

Unauthenticated → 401; authenticated but not allowed → 403. Messages never echo a token.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from gossamer.control.ca.tokens import TokenScope
from gossamer.control.credentials import Credentials
from gossamer.control.errors import ApiError, Handler, read_json_object

PRINCIPAL_KEY = web.RequestKey("principal", object)
# The trust bundle is public (CA certificates): a sidecar fetches it before sending its
# token, to check it against the fingerprint the token carries (kubeadm's discovery).
OPEN_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/api/v1/version",
        "/api/v1/login",
        "/api/v1/trust-bundle",
        "/",
    }
)
OPEN_PREFIXES = ("/ui/",)  # the dashboard's static assets (its login page is `/`)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "gossamer_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 8 * 3600.0
# What a sidecar's token may call (route patterns as aiohttp canonicalises them).
PROXY_ROUTES = frozenset(
    {
        ("POST", "/api/v1/proxies/{id}/register"),
        ("POST", "/api/v1/proxies/{id}/heartbeat"),
        ("DELETE", "/api/v1/proxies/{id}"),
        ("GET", "/api/v1/proxies/{id}/stream"),
        ("POST", "/api/v1/proxies/{id}/ack"),
        ("POST", "/api/v1/proxies/{id}/watch"),
        ("POST", "/api/v1/proxies/{id}/telemetry"),
        ("POST", "/api/v1/proxies/{id}/certificate"),
        ("GET", "/api/v1/trust-bundle"),
        ("GET", "/api/v1/proxies/{id}/gateway"),  # a gateway's view (gateway_api.py)
    }
)
# Tap streams live request lines of any service: operators with the admin role only.
ADMIN_ONLY_PREFIXES = ("/api/v1/tokens", "/api/v1/ca/", "/api/v1/tap")


@dataclass(frozen=True)
class Principal:
    name: str  # operator name, or the proxy's service
    role: str  # "admin" | "viewer" | "proxy"
    namespace: str | None = None  # proxies only

    @classmethod
    def of(cls, scope: TokenScope) -> Principal:
        return cls(scope.name, scope.role, scope.namespace)


ANONYMOUS = Principal("anonymous", "admin")  # only where no authenticator is configured


def may_call(principal: Principal, method: str, route: str, path: str) -> bool:
    """Whether `principal` may call `method route` at all (scope checks come after)."""
    if principal.role == "admin":
        return True
    if principal.role == "proxy":
        return (method, route) in PROXY_ROUTES
    if principal.role == "viewer":
        return method in SAFE_METHODS and not path.startswith(ADMIN_ONLY_PREFIXES)
    return False


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


@dataclass
class Session:
    principal: Principal
    csrf: str
    expires_at: float


class Authenticator:
    """Resolves credentials to principals; holds dashboard sessions and proxy ownership."""

    def __init__(
        self,
        credentials: Credentials,
        wall_clock: Callable[[], float] = time.time,
        audit: Callable[[dict[str, object]], None] | None = None,
    ):
        self.credentials = credentials
        self.wall_clock = wall_clock
        self.audit = audit  # every change, with who made it (never bodies or tokens)
        self.sessions: dict[str, Session] = {}
        self.proxy_owner: dict[str, tuple[str, str]] = {}  # proxy id -> (namespace, service)

    def authenticate(self, request: web.Request) -> Principal:
        now = self.wall_clock()
        token = bearer_token(request.headers.get("Authorization"))
        if token is not None:
            scope = self.credentials.verify(token, now)
            if scope is None:
                raise ApiError(401, "the credential is unknown, expired or revoked")
            return Principal.of(scope)
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            session = self.sessions.get(session_id)
            if session is None or session.expires_at <= now:
                self.sessions.pop(session_id, None)
                raise ApiError(401, "the session has expired; log in again")
            if request.method not in SAFE_METHODS and not secrets.compare_digest(
                request.headers.get(CSRF_HEADER, ""), session.csrf
            ):
                raise ApiError(403, f"missing or wrong {CSRF_HEADER} header")
            return session.principal
        raise ApiError(401, "authentication required: send Authorization: Bearer <token>")

    def login(self, token: str) -> tuple[str, Session]:
        now = self.wall_clock()
        scope = self.credentials.verify(token, now)
        if scope is None or scope.role == "proxy":
            raise ApiError(401, "the credential is unknown, expired, revoked or not an operator's")
        for sid in [s for s, v in self.sessions.items() if v.expires_at <= now]:
            del self.sessions[sid]
        session = Session(Principal.of(scope), secrets.token_urlsafe(32), now + SESSION_SECONDS)
        session_id = secrets.token_urlsafe(32)
        self.sessions[session_id] = session
        return session_id, session

    async def check_proxy_scope(self, request: web.Request, principal: Principal) -> None:
        """A sidecar touches only proxy ids of its own service (claimed on first use; ids
        carry random hex) and registers or streams only as its own service."""
        proxy_id = request.match_info.get("id")
        if proxy_id is None:
            return
        mine = (principal.namespace or "default", principal.name)
        owner = self.proxy_owner.setdefault(proxy_id, mine)
        if owner != mine:
            raise ApiError(403, f"proxy id {proxy_id} belongs to another service")
        if request.path.endswith("/register"):
            body = await read_json_object(request)  # aiohttp caches it for the handler
            asked = (str(body.get("namespace") or "default"), str(body.get("service") or ""))
        elif request.path.endswith("/stream"):
            asked = (request.query.get("namespace", "default"), request.query.get("service", ""))
        else:
            return
        if asked != mine:
            raise ApiError(403, f"this credential acts only for service {mine[0]}/{mine[1]}")


AUTHENTICATOR_KEY = web.AppKey("authenticator", Authenticator)


def principal_of(request: web.Request) -> Principal:
    found = request.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else ANONYMOUS


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    authenticator = request.app.get(AUTHENTICATOR_KEY)
    if authenticator is None:
        # An embedded control plane built without credentials (in-process tests): open.
        request[PRINCIPAL_KEY] = ANONYMOUS
        return await handler(request)
    if is_open(request.path):
        return await handler(request)
    principal = authenticator.authenticate(request)
    route = request.match_info.route.resource
    canonical = route.canonical if route is not None else request.path
    audited = authenticator.audit is not None and request.method not in SAFE_METHODS
    if principal.role == "proxy":
        audited = False  # sidecars' own lease and stream traffic, not configuration
    status = 500
    try:
        if not may_call(principal, request.method, canonical, request.path):
            raise ApiError(
                403, f"{principal.role} {principal.name!r} may not {request.method} this"
            )
        if principal.role == "proxy":
            await authenticator.check_proxy_scope(request, principal)
        request[PRINCIPAL_KEY] = principal
        response = await handler(request)
        status = response.status
        return response
    except ApiError as exc:
        status = exc.status
        raise
    finally:
        if audited and authenticator.audit is not None:
            authenticator.audit(
                {
                    "time": authenticator.wall_clock(),
                    "who": principal.name,
                    "role": principal.role,
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                }
            )
