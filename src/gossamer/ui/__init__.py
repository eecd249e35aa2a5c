"""The web dashboard: static ES modules served by the control plane at `/` and `/ui/...`.

The browser talks only to the REST API of docs/protocol.md; this module only ships files.

    app = web.Application(...)
    add_dashboard_routes(app)
"""

from __future__ import annotations

from aiohttp import web

from gossamer.ui.assets import STATIC_DIR, Asset, resolve_asset

__all__ = ["STATIC_DIR", "Asset", "add_dashboard_routes", "resolve_asset"]

# Scripts and styles only from our own origin; nothing inline, no CDN.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _asset_response(asset: Asset) -> web.Response:
    return web.Response(
        body=asset.body,
        content_type=asset.content_type,
        charset="utf-8",
        headers={
            # Small files, served locally: always revalidate so an upgrade shows at once.
            "Cache-Control": "no-cache",
            "ETag": asset.etag,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Referrer-Policy": "no-referrer",
        },
    )


def _serve(name: str, request: web.Request) -> web.Response:
    asset = resolve_asset(name)
    if asset is None:
        raise web.HTTPNotFound(reason=f"no dashboard file {name!r}")
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers={"ETag": asset.etag})
    return _asset_response(asset)


async def _index(request: web.Request) -> web.Response:
    return _serve("index.html", request)


async def _static(request: web.Request) -> web.Response:
    return _serve(request.match_info["name"], request)


def add_dashboard_routes(app: web.Application) -> None:
    """Serve the dashboard: GET / is the page, GET /ui/<file> its modules and styles."""
    app.add_routes([web.get("/", _index), web.get("/ui/{name}", _static)])
