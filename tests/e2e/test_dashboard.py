"""The dashboard in headless Chromium against a real control plane and real sidecar links."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from meshkit import Mesh, open_page, service, split_route
from playwright.sync_api import expect

PAGES = ["overview", "topology", "traffic", "canary", "proxies", "config", "events"]


def test_overview_lists_services_with_healthy_counts(page: Any, seeded: Mesh) -> None:
    open_page(page, seeded)
    reviews = page.locator('tr[data-service="default/reviews"]')
    expect(reviews.locator('[data-cell="instances"]')).to_have_text("2/2")
    ratings = page.locator('tr[data-service="default/ratings"]')
    expect(ratings.locator('[data-cell="instances"]')).to_have_text("1/2")
    expect(ratings).to_have_class(re.compile("trouble"))
    expect(ratings).to_contain_text("1 unhealthy")
    expect(page.locator('tr[data-service="default/productpage"]')).to_contain_text("no instances")


def test_service_page_shows_instances_routes_and_policies(page: Any, seeded: Mesh) -> None:
    open_page(page, seeded, "#/service/default/ratings")
    healthy = page.locator('tr[data-instance="ratings-ccc333"]')
    expect(healthy).to_contain_text("127.0.0.1:20005")
    expect(healthy).to_contain_text("version=v1")
    expect(healthy).to_contain_text(re.compile(r"acked \d+ / latest \d+"))
    sick = page.locator('tr[data-instance="ratings-ddd444"]')
    expect(sick).to_contain_text("unhealthy")
    expect(sick).to_contain_text("no stream")
    expect(page.locator("main")).to_contain_text("default/ratings-lb")
    expect(page.locator("main")).to_contain_text("RoundRobin")
    page.goto(f"{seeded.url}/#/service/default/reviews")
    expect(page.locator("main")).to_contain_text("default/reviews-split")
    expect(page.locator("main")).to_contain_text("reviews {version=v2} (weight 10)")


def test_proxies_page_shows_acked_against_latest(page: Any, seeded: Mesh) -> None:
    open_page(page, seeded, "#/proxies")
    for proxy_id in ("reviews-aaa111", "reviews-bbb222", "ratings-ccc333"):
        row = page.locator(f'tr[data-proxy="{proxy_id}"]')
        expect(row).to_contain_text("connected")
        expect(row).to_contain_text("in sync")
    status, listing = seeded.call("GET", "/api/v1/proxies")
    assert status == 200
    expect(page.locator("main")).to_contain_text(f"Latest compiled version: {listing['latest']}")


def test_changes_through_the_api_appear_live_without_reload(page: Any, seeded: Mesh) -> None:
    open_page(page, seeded)
    page.evaluate("window.__notReloaded = true")
    seeded.apply(service("catalog"))
    expect(page.locator('tr[data-service="default/catalog"]')).to_contain_text("no instances")
    page.click('nav a[href="#/events"]')
    expect(page.locator('tr[data-event="Service/default/catalog"]')).to_contain_text("PUT")
    assert seeded.call("DELETE", "/api/v1/namespaces/default/services/catalog")[0] == 200
    expect(page.locator('tr[data-event="Service/default/catalog"]').first).to_contain_text("DELETE")
    page.click('nav a[href="#/overview"]')
    expect(page.locator('tr[data-service="default/catalog"]')).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True


def route_weights(mesh: Mesh, name: str) -> list[int]:
    status, route = mesh.call("GET", f"/api/v1/namespaces/default/httproutes/{name}")
    assert status == 200
    return [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]]


def test_traffic_shifting_changes_weights_and_shows_conflicts(page: Any, seeded: Mesh) -> None:
    seeded.apply(split_route("shift-me", "reviews", {"v1": 90, "v2": 10}))
    open_page(page, seeded, "#/traffic/default/shift-me")
    page.fill("#w-0-1", "50")
    diff = page.locator("#traffic-editor .diff")
    expect(diff).to_contain_text("reviews {version=v2}: 10 → 50 (10% → 35.7%)")
    page.click("#confirm-rule-0")
    expect(page.locator("#traffic-outcome")).to_contain_text("Saved")
    assert route_weights(seeded, "shift-me") == [90, 50]

    # Someone else changes the route meanwhile: the page's PUT must be refused, visibly.
    status, route = seeded.call("GET", "/api/v1/namespaces/default/httproutes/shift-me")
    assert status == 200
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 70
    assert seeded.call("PUT", "/api/v1/namespaces/default/httproutes/shift-me", route)[0] == 200
    expect(page.locator("#traffic-editor .notice")).to_contain_text("changed on the server")
    page.fill("#w-0-0", "0")
    page.click("#confirm-rule-0")
    expect(page.locator("#traffic-outcome .conflict")).to_contain_text("Conflict")
    assert route_weights(seeded, "shift-me") == [70, 50]


def test_config_shows_the_field_error_and_stores_nothing(
    page: Any, seeded: Mesh, screenshot_dir: Path
) -> None:
    seeded.apply(split_route("edit-me", "reviews", {"v1": 3, "v2": 1}))
    open_page(page, seeded, "#/config")
    page.select_option("#config-kind", "HTTPRoute")
    page.click('#config-resources button[data-key="default/edit-me"]')
    expect(page.locator('#config-resources button[data-key="default/edit-me"]')).to_have_attribute(
        "aria-current", "true"
    )
    editor = page.locator("#config-editor")
    text = editor.input_value()
    assert "weight: 3" in text
    bad = text.replace("weight: 3", "weight: -1")
    editor.fill(bad)
    page.click("#config-validate")
    error = page.locator('#config-errors li[data-field="spec.rules[0].backendRefs[0].weight"]')
    expect(error).to_contain_text("greater than or equal to 0")
    expected_line = bad.split("\n").index(next(x for x in bad.split("\n") if "weight: -1" in x)) + 1
    expect(error).to_have_attribute("data-line", str(expected_line))
    expect(page.locator(".gutter .err")).to_have_text(str(expected_line))
    expect(editor).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(screenshot_dir / "config-error-1280.png"))
    page.click("#config-apply")  # validation fails first: nothing may be stored
    expect(error).to_be_visible()
    assert route_weights(seeded, "edit-me") == [3, 1]

    editor.fill(text.replace("weight: 3", "weight: 5"))
    page.click("#config-apply")
    expect(page.locator("#config-result")).to_contain_text("HTTPRoute default/edit-me configured")
    assert route_weights(seeded, "edit-me") == [5, 1]


def focus_path(page: Any, presses: int) -> list[str]:
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                "() => { const e = document.activeElement;"
                " return e.id ? 'id:' + e.id : e.getAttribute('href') ? 'href:' + e.getAttribute('href')"
                " : e.getAttribute('aria-label') || e.tagName; }"
            )
        )
    return seen


def test_keyboard_reaches_the_main_controls(page: Any, seeded: Mesh) -> None:
    open_page(page, seeded)  # logging in moves the focus to the heading: start afresh
    page.reload()
    expect(page.locator("#live-status")).to_contain_text("Live")
    path = focus_path(page, 8)
    assert path[0] == "href:#main", path  # the skip link comes first
    for target in ("#/overview", "#/traffic", "#/config", "#/events"):
        assert f"href:{target}" in path, path
    page.focus('nav a[href="#/traffic"]')
    page.keyboard.press("Enter")
    expect(page.locator("#routes-table")).to_be_visible()
    page.goto(f"{seeded.url}/#/traffic/default/reviews-split")
    expect(page.locator("#w-0-0")).to_be_visible()
    path = focus_path(page, 14)
    assert "id:w-0-0" in path and "id:w-0-1" in path, path
    page.focus('input[aria-label="weight of reviews {version=v2} (slider)"]')
    page.keyboard.press("ArrowRight")  # sliders move by keyboard too
    expect(page.locator("#w-0-1")).to_have_value("11")
    expect(page.locator("#traffic-editor .diff")).to_contain_text("10 → 11")
    page.goto(f"{seeded.url}/#/config")
    expect(page.locator("#config-kind")).to_be_visible()
    path = focus_path(page, 14)
    assert "id:config-kind" in path, path
    page.focus("#config-kind")
    path = focus_path(page, 30)
    for control in ("config-editor", "config-validate", "config-apply"):
        assert f"id:{control}" in path, path


@pytest.mark.parametrize("width", [1280, 375])
def test_screenshots_fit_the_viewport(
    page: Any, seeded: Mesh, screenshot_dir: Path, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    open_page(page, seeded)
    routes = {name: f"#/{name}" for name in PAGES}
    routes["service"] = "#/service/default/reviews"
    routes["traffic-edit"] = "#/traffic/default/reviews-split"
    for name, hash_ in routes.items():
        page.goto(f"{seeded.url}/{hash_}")
        expect(page.locator("main h1")).to_be_visible()
        page.screenshot(path=str(screenshot_dir / f"{name}-{width}.png"), full_page=False)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{name} at {width}px is {overflow}px wide"
