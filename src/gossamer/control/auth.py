"""The one place requests are authenticated. Today every caller is allowed; the security
work fills `authenticate` in (operator credentials, proxy bootstrap tokens, SVIDs)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gossamer.control.errors import Handler

PRINCIPAL_KEY = web.RequestKey("principal", object)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/api/v1/version"})


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # "admin" | "viewer" | "proxy" | "anonymous"


ANONYMOUS = Principal("anonymous", "admin")


def authenticate(request: web.Request) -> Principal:
    """Who is calling. Raise ApiError(401/403) to refuse. Allows everyone for now."""
    return ANONYMOUS


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in OPEN_PATHS:
        request[PRINCIPAL_KEY] = authenticate(request)
    return await handler(request)
