"""Browser tests of the dashboard: a real control plane (port 0) and headless Chromium."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from meshkit import Mesh, calls_route, service, split_route

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is absent: the dashboard's browser tests need Debian's chromium "
        "(apt-get install -y chromium)",
        allow_module_level=True,
    )
playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need the 'playwright' package ([test] extra)"
)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    running = Mesh(tmp_path_factory.mktemp("control")).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="gossamer-chromium-")
    with playwright_sync.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(8000)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    tab = browser_context.new_page()
    tab.set_viewport_size({"width": 1280, "height": 800})
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        tab.close()
    assert not errors, f"uncaught errors in the page: {errors}"


# Screenshots are kept as artifacts (git-ignored); CI may point elsewhere.
ARTIFACTS = Path(os.environ.get("GOSSAMER_E2E_ARTIFACTS", Path(__file__).parent / "artifacts"))


@pytest.fixture(scope="module")
def screenshot_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def seeded(mesh: Mesh) -> Mesh:
    policy = {
        "apiVersion": "gossamer.dev/v1",
        "kind": "TrafficPolicy",
        "metadata": {"name": "ratings-lb", "namespace": "default"},
        "spec": {"targetRefs": [{"name": "ratings"}], "loadBalancer": {"type": "RoundRobin"}},
    }
    mesh.apply(
        service("reviews"),
        service("ratings"),
        service("productpage"),
        split_route("reviews-split", "reviews", {"v1": 90, "v2": 10}),
        calls_route("productpage-to-reviews", "productpage", "reviews"),
        policy,
    )
    mesh.start_sidecar("reviews-aaa111", "reviews", {"version": "v1"}, 20001)
    mesh.start_sidecar("reviews-bbb222", "reviews", {"version": "v2"}, 20003)
    mesh.start_sidecar("ratings-ccc333", "ratings", {"version": "v1"}, 20005)
    # An instance registered through the API whose own probe fails: unhealthy.
    registration = {
        "service": "ratings",
        "namespace": "default",
        "address": "127.0.0.1",
        "port": 20007,
        "labels": {"version": "v2"},
        "leaseSeconds": 3600,
    }
    assert mesh.call("POST", "/api/v1/proxies/ratings-ddd444/register", registration)[0] == 200
    assert (
        mesh.call("POST", "/api/v1/proxies/ratings-ddd444/heartbeat", {"healthy": False})[0] == 200
    )
    return mesh
