"""Conflicting HTTPRoutes (an identical match on one parent) through the apply API: the
losing route's status.warnings name the winner; the winner's status stays clean."""

from __future__ import annotations

from typing import Any

from controlkit import Api, route, service


def on_path(doc: dict[str, Any], path: str, header: str | None = None) -> dict[str, Any]:
    match: dict[str, Any] = {"path": {"type": "PathPrefix", "value": path}}
    if header is not None:
        match["headers"] = [{"name": header, "value": "1"}]
    doc["spec"]["rules"][0]["matches"] = [match]
    return doc


async def status_of(api: Api, name: str) -> dict[str, Any]:
    code, got = await api.call("GET", f"/api/v1/namespaces/default/httproutes/{name}")
    assert code == 200, got
    return dict(got["status"])


async def test_the_newer_of_two_identical_matches_is_told_the_older_wins(api: Api) -> None:
    await api.apply(service("reviews"))
    older = on_path(route("older", "reviews", [{"name": "reviews"}]), "/api")
    status, out = await api.apply(older)
    assert status == 200 and out["warnings"] == []
    # The same match written differently: a trailing slash on a prefix is normalised away.
    newer = on_path(route("newer", "reviews", [{"name": "reviews"}]), "/api/")
    status, out = await api.apply(newer)
    assert status == 200
    [warning] = out["warnings"]
    assert warning.startswith("HTTPRoute default/newer: spec.rules[0].matches[0]")
    assert "HTTPRoute default/older spec.rules[0].matches[0], which wins" in warning
    assert "parent default/reviews" in warning
    assert "HTTPRoute default/older" in (await status_of(api, "newer"))["warnings"][0]
    assert "warnings" not in await status_of(api, "older")
    # Re-applying the older route does not make it lose to the newer one.
    status, out = await api.apply(older)
    assert out["warnings"] == [] and out["results"][0]["action"] == "unchanged"
    # A match that differs (one more header) is no conflict: the newer route is cleared.
    status, out = await api.apply(on_path(newer, "/api", header="X-Beta"))
    assert out["warnings"] == []
    assert "warnings" not in await status_of(api, "newer")


async def test_two_new_routes_in_one_apply_and_a_duplicate_rule_in_one_route(api: Api) -> None:
    first = on_path(route("b-first", "reviews", [{"name": "reviews"}]), "/x")
    second = on_path(route("a-second", "reviews", [{"name": "reviews"}]), "/x")
    # Applied together they are created together: the first in the apply is the older.
    status, out = await api.apply(service("reviews"), first, second)
    assert status == 200
    assert [w.split(":")[0] for w in out["warnings"]] == ["HTTPRoute default/a-second"]
    twice = route("twice", "ratings", [{"name": "ratings"}])
    twice["spec"]["rules"].append(dict(twice["spec"]["rules"][0]))
    status, out = await api.apply(service("ratings"), twice)
    [warning] = out["warnings"]
    assert "spec.rules[1].matches[0] is identical to spec.rules[0].matches[0]" in warning


async def test_create_and_replace_through_the_resource_api_report_conflicts_too(api: Api) -> None:
    await api.apply(service("reviews"))
    base = "/api/v1/namespaces/default/httproutes"
    code, _ = await api.call(
        "POST", base, on_path(route("one", "reviews", [{"name": "reviews"}]), "/a")
    )
    assert code == 201
    code, two = await api.call(
        "POST", base, on_path(route("two", "reviews", [{"name": "reviews"}]), "/a")
    )
    assert code == 201
    assert (
        "HTTPRoute default/one spec.rules[0].matches[0], which wins" in two["status"]["warnings"][0]
    )
    # Replacing `one` keeps its age: it still wins, its status stays clean.
    one = on_path(route("one", "reviews", [{"name": "reviews", "weight": 2}]), "/a")
    code, got = await api.call("PUT", f"{base}/one", one)
    assert code == 200 and "warnings" not in got["status"], got
    # Replacing `two` with another path clears its warning.
    moved = on_path(route("two", "reviews", [{"name": "reviews"}]), "/b")
    code, got = await api.call("PUT", f"{base}/two", moved)
    assert code == 200 and "warnings" not in got["status"], got
