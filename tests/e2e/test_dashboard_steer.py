"""Steering the mesh from the dashboard, and its guard rails: weights changed in the page move
live traffic between real sidecars (seen in the page and in the metrics API), nothing is
stored without a confirmation, and a viewer sees everything but can change nothing."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from meshkit import Load, Mesh, open_page, service, split_route
from playwright.sync_api import expect

SHIFT_SECONDS = 20.0  # reports every 200 ms: the shift shows in well under this


@pytest.fixture(scope="module")
def traffic(mesh: Mesh) -> Iterator[Load]:
    """productpage -> reviews through real sidecars; route `reviews` sends all to v1."""
    mesh.apply(
        service("reviews"),
        service("productpage"),
        split_route("reviews", "reviews", {"v1": 100, "v2": 0}),
    )
    mesh.spawn_sidecar("reviews-1", "reviews", "v1")
    mesh.spawn_sidecar("reviews-2", "reviews", "v2")
    caller = mesh.spawn_sidecar("productpage-1", "productpage", "v1")
    with Load(caller.ports["outbound"], "reviews") as load:
        yield load
    assert load.answers.get(200, 0) > 0, load.answers


def subset_requests(mesh: Mesh, subset: str) -> int:
    """What the callers' sidecars reported for `subset` of reviews (the whole short history)."""
    _, body = mesh.call("GET", "/api/v1/metrics/services?service=reviews&window=10m")
    items = body["items"]
    if not items:
        return 0
    stats = items[0]["subsets"].get(subset)
    return int(stats["requests"]) if stats else 0


def stored(mesh: Mesh, plural: str, name: str) -> tuple[str, Any]:
    status, doc = mesh.call("GET", f"/api/v1/namespaces/default/{plural}/{name}")
    assert status == 200, doc
    return doc["metadata"]["resourceVersion"], doc["spec"]


def test_weights_changed_in_the_page_shift_live_traffic(
    page: Any, traffic: Load, mesh: Mesh, screenshot_dir: Path
) -> None:
    open_page(page, mesh, "#/service/default/reviews")
    v1 = page.locator('#subsets-table tr[data-subset="version=v1"]')
    v2 = page.locator('#subsets-table tr[data-subset="version=v2"]')
    expect(v1.locator('[data-cell="share"]')).to_have_text("100.0%", timeout=20000)
    expect(v2).to_have_count(0)  # weight 0: v2 has served nothing
    assert subset_requests(mesh, "version=v2") == 0
    page.screenshot(path=str(screenshot_dir / "shift-before-1280.png"), full_page=True)

    page.goto(f"{mesh.url}/#/traffic/default/reviews")
    page.fill("#w-0-0", "0")
    page.fill("#w-0-1", "100")
    diff = page.locator("#traffic-editor .diff")
    expect(diff).to_contain_text("reviews {version=v1}: 100 → 0 (100% → 0%)")
    expect(diff).to_contain_text("reviews {version=v2}: 0 → 100 (0% → 100%)")
    page.screenshot(path=str(screenshot_dir / "shift-review-1280.png"), full_page=True)
    page.click("#confirm-rule-0")
    expect(page.locator("#traffic-outcome")).to_contain_text("Saved")
    weights = [
        b["weight"] for b in stored(mesh, "httproutes", "reviews")[1]["rules"][0]["backendRefs"]
    ]
    assert weights == [0, 100]

    # The sidecars' own reports: v2 takes the traffic and v1 gets no more of it.
    deadline = time.monotonic() + SHIFT_SECONDS
    shifted = False
    while not shifted and time.monotonic() < deadline:
        v1_before, v2_before = (
            subset_requests(mesh, "version=v1"),
            subset_requests(mesh, "version=v2"),
        )
        page.wait_for_timeout(1000)  # a second of load at ~40 rps, five reports
        v1_after, v2_after = (
            subset_requests(mesh, "version=v1"),
            subset_requests(mesh, "version=v2"),
        )
        shifted = v2_after > v2_before > 0 and v1_after == v1_before
    assert shifted, (v1_before, v1_after, v2_before, v2_after)

    page.goto(f"{mesh.url}/#/service/default/reviews")
    expect(v2.locator('[data-cell="rps"]')).not_to_have_text("—", timeout=10000)
    assert float(re.sub(r"[^\d.]", "", v2.locator('[data-cell="share"]').inner_text())) > 0
    page.screenshot(path=str(screenshot_dir / "shift-after-1280.png"), full_page=True)


def test_nothing_is_stored_without_a_confirmation(
    page: Any, traffic: Load, mesh: Mesh, screenshot_dir: Path
) -> None:
    mesh.apply(split_route("hold-still", "reviews", {"v1": 80, "v2": 20}))
    before = stored(mesh, "httproutes", "hold-still")
    open_page(page, mesh, "#/traffic/default/hold-still")
    # Discarded: the fields go back to what is stored.
    page.fill("#w-0-1", "60")
    expect(page.locator("#traffic-editor .diff")).to_contain_text("20 → 60")
    page.get_by_role("button", name="Discard").click()
    expect(page.locator("#w-0-1")).to_have_value("20")
    expect(page.locator("#traffic-editor .diff")).to_contain_text("No change")
    # Left unconfirmed: navigating away drops the edit.
    page.fill("#w-0-0", "5")
    page.click('nav a[href="#/overview"]')
    expect(page.locator("#services-table")).to_be_visible()
    page.go_back()
    expect(page.locator("#w-0-0")).to_have_value("80")
    assert stored(mesh, "httproutes", "hold-still") == before

    # Config: edited and validated (a dry run) but not applied, then left.
    page.goto(f"{mesh.url}/#/config")
    page.select_option("#config-kind", "HTTPRoute")
    page.click('#config-resources button[data-key="default/hold-still"]')
    editor = page.locator("#config-editor")
    editor.fill(editor.input_value().replace("weight: 20", "weight: 70"))
    page.click("#config-validate")
    expect(page.locator("#config-result")).to_contain_text("Valid: 1 document(s) would apply")
    page.click('nav a[href="#/traffic"]')
    expect(page.locator("#routes-table")).to_be_visible()
    page.click('nav a[href="#/config"]')
    expect(page.locator("#config-editor")).to_have_value("")
    assert stored(mesh, "httproutes", "hold-still") == before

    # A canary reviewed, then cancelled: none exists.
    page.goto(f"{mesh.url}/#/canary")
    page.fill("#canary-name", "never-started")
    page.select_option("#canary-service", "default/reviews")
    page.click("#canary-review-button")
    expect(page.locator("#canary-review")).to_contain_text("Start this canary?")
    page.locator("#canary-review").get_by_role("button", name="Cancel").click()
    expect(page.locator("#canary-confirm")).to_have_count(0)
    assert mesh.call("GET", "/api/v1/namespaces/default/canaries/never-started")[0] == 404
    assert stored(mesh, "httproutes", "hold-still") == before
    assert stored(mesh, "httproutes", "reviews")[0] != before[0]  # that one was confirmed


def viewer_token(mesh: Mesh) -> str:
    status, body = mesh.call("POST", "/api/v1/tokens", {"operator": "bob", "role": "viewer"})
    assert status == 201, body
    assert body["role"] == "viewer"
    return str(body["token"])


def log_in(page: Any, mesh: Mesh, token: str, hash_: str) -> None:
    page.goto(f"{mesh.url}/{hash_}")
    page.fill("#login-token", token)
    page.click("#login-submit")
    expect(page.locator("#live-status")).to_contain_text("Live")


def test_a_viewer_sees_everything_and_can_change_nothing(
    page: Any, browser_context: Any, traffic: Load, mesh: Mesh, screenshot_dir: Path
) -> None:
    mesh.apply(service("ratings"), split_route("ratings", "ratings", {"v1": 100, "v2": 0}))
    canary = {"service": "ratings", "baseline": {"version": "v1"}, "canary": {"version": "v2"},
              "steps": [10, 100], "interval": "1m",
              "thresholds": {"maxErrorRate": 1, "minRequests": 100000}}  # fmt: skip
    status, body = mesh.call("POST", "/api/v1/namespaces/default/canaries/ratings-v2/start",
                             {"spec": canary})  # fmt: skip
    assert status == 200, body
    route_before = stored(mesh, "httproutes", "reviews")
    browser_context.clear_cookies()
    try:
        log_in(page, mesh, viewer_token(mesh), "#/overview")
        expect(page.locator("#who")).to_contain_text("bob (viewer)")
        row = page.locator('tr[data-service="default/reviews"]')
        expect(row.locator('[data-cell="success"]')).to_have_text("100.0%", timeout=20000)

        page.goto(f"{mesh.url}/#/traffic/default/reviews")
        note = page.locator("#readonly-note")
        expect(note).to_contain_text("bob (viewer)")
        expect(note).to_contain_text("changing weights needs an admin credential")
        for control in page.locator("#traffic-editor input").all():
            expect(control).to_be_disabled()
            expect(control).to_have_attribute("aria-describedby", "readonly-note")
        expect(page.locator("#w-0-1")).to_have_value("100")  # the weights are still shown
        page.screenshot(path=str(screenshot_dir / "viewer-traffic-1280.png"), full_page=True)

        page.goto(f"{mesh.url}/#/config")
        page.select_option("#config-kind", "HTTPRoute")
        page.click('#config-resources button[data-key="default/reviews"]')
        expect(page.locator("#config-editor")).to_have_value(re.compile("weight: 100"))
        expect(page.locator("#config-editor")).not_to_be_editable()
        expect(page.locator("#config-validate")).to_be_disabled()
        expect(page.locator("#config-apply")).to_be_disabled()
        expect(page.locator("#readonly-note")).to_contain_text("validating and applying")

        page.goto(f"{mesh.url}/#/canary")
        expect(page.locator("#canary-review-button")).to_be_disabled()
        expect(page.locator("#canary-name")).to_be_disabled()
        expect(page.locator("#readonly-note")).to_contain_text("starting a canary")
        page.goto(f"{mesh.url}/#/canary/default/ratings-v2")
        expect(page.locator("#canary-phase")).to_have_text("Progressing")
        expect(page.locator("#canary-actions button")).to_have_count(0)
        expect(page.locator("#canary-actions #readonly-note")).to_contain_text(
            "promoting, aborting"
        )
        page.screenshot(path=str(screenshot_dir / "viewer-canary-1280.png"), full_page=True)

        # The controls only say what the API enforces: a viewer's change is refused.
        script = """async () => {
            const s = await (await fetch('/api/v1/session')).json();
            const r = await fetch('/api/v1/namespaces/default/canaries/ratings-v2/abort',
                {method: 'POST', headers: {'X-CSRF-Token': s.csrfToken}});
            return r.status;
        }"""
        assert page.evaluate(script) == 403
    finally:
        browser_context.clear_cookies()
    _, status_doc = mesh.call("GET", "/api/v1/namespaces/default/canaries/ratings-v2/status")
    assert status_doc["status"]["phase"] == "Progressing"
    assert stored(mesh, "httproutes", "reviews") == route_before
