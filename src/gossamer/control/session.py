"""The dashboard's view of its own login: who it is and the CSRF token of its session.

`POST /api/v1/login` hands the CSRF token out once; a reloaded page (or a second tab) still
holds the HttpOnly session cookie but not the token, so it asks here. A GET is safe under
the auth middleware (no CSRF needed) and a missing or expired session is its usual 401,
which is how the dashboard learns to show its login form.

GET /api/v1/session   → {"name", "role", "csrfToken" (null for a bearer token), "auth": bool}
"""

from __future__ import annotations

from aiohttp import web

from gossamer.control.auth import AUTHENTICATOR_KEY, SESSION_COOKIE, principal_of
from gossamer.control.errors import json_response


async def session_info(request: web.Request) -> web.Response:
    authenticator = request.app.get(AUTHENTICATOR_KEY)
    principal = principal_of(request)
    if authenticator is None:
        # An embedded control plane without credentials: nothing to log in to.
        return json_response(
            {"name": principal.name, "role": principal.role, "csrfToken": None, "auth": False}
        )
    session = authenticator.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
    csrf = session.csrf if session is not None and session.principal == principal else None
    return json_response(
        {"name": principal.name, "role": principal.role, "csrfToken": csrf, "auth": True}
    )


def session_routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/session", session_info)]
