"""The dashboard's file serving: which names resolve, how they are typed, what stays out."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gossamer.ui import CONTENT_SECURITY_POLICY, add_dashboard_routes
from gossamer.ui.assets import STATIC_DIR, content_type_for, resolve_asset


def test_every_shipped_file_resolves_with_a_type() -> None:
    names = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())
    assert "index.html" in names and "app.js" in names
    for name in names:
        asset = resolve_asset(name)
        assert asset is not None, name
        assert asset.body == (STATIC_DIR / name).read_bytes()
        assert re.fullmatch(r'"[0-9a-f]{16}"', asset.etag)


@pytest.mark.parametrize(
    "name",
    ["../__init__.py", "..", ".hidden.js", "a/b.js", "app.py", "", "x" * 200 + ".js", "%2e%2e.js"],
)
def test_names_outside_the_static_files_resolve_to_nothing(name: str) -> None:
    assert resolve_asset(name) is None


def test_content_types_are_the_ones_browsers_need_for_modules() -> None:
    assert content_type_for("app.js") == "text/javascript"
    assert content_type_for("js-yaml.mjs") == "text/javascript"
    assert content_type_for("dashboard.css") == "text/css"
    assert content_type_for("notes.exe") is None


def test_every_module_import_names_a_shipped_file() -> None:
    # A typo in an import is a blank page in the browser: catch it here.
    for path in STATIC_DIR.glob("*.js"):
        for target in re.findall(r'from "\./([^"]+)"', path.read_text()):
            assert (STATIC_DIR / target).is_file(), f"{path.name} imports missing {target}"


async def test_routes_serve_the_page_and_modules_over_http() -> None:
    app = web.Application()
    add_dashboard_routes(app)
    async with TestClient(TestServer(app, port=0)) as client:
        page = await client.get("/")
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert '<script type="module" src="/ui/app.js">' in await page.text()
        module = await client.get("/ui/app.js")
        assert module.status == 200
        assert module.headers["Content-Type"].startswith("text/javascript")
        again = await client.get("/ui/app.js", headers={"If-None-Match": module.headers["ETag"]})
        assert again.status == 304
        assert (await client.get("/ui/nope.js")).status == 404
        assert (await client.get("/ui/..%2F__init__.py")).status == 404
