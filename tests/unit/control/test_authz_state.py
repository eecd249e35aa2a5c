"""Which entries an AuthorizationPolicy or PeerAuthentication change touches."""

from __future__ import annotations

from test_state import Feed

from gossamer.control.authz_compiler import compile_authz, compile_mtls
from gossamer.store.base import Event, Record


def services(feed: Feed, *keys: str) -> None:
    for key in keys:
        namespace, name = key.split("/")
        feed.put("Service", name, {"spec": {}}, namespace)


def test_policy_changes_touch_the_services_they_select() -> None:
    feed = Feed()
    services(feed, "default/reviews", "default/ratings", "shop/reviews")
    by_service = {"spec": {"selector": {"matchLabels": {"service": "reviews"}}, "action": "DENY"}}
    assert feed.put("AuthorizationPolicy", "a", by_service) == {"default/reviews"}
    assert feed.put("AuthorizationPolicy", "ns", {"spec": {}}) == {
        "default/reviews",
        "default/ratings",
    }
    root = {"spec": {"action": "DENY", "rules": [{}]}}
    assert feed.put("AuthorizationPolicy", "mesh", root, "gossamer-system") == {
        "default/reviews",
        "default/ratings",
        "shop/reviews",
    }
    assert [p["name"] for p in compile_authz(feed.state, "shop/reviews")] == [
        "gossamer-system/mesh"
    ]
    # Re-selecting moves the policy: both the old and the new target change.
    by_other = {"spec": {"selector": {"matchLabels": {"service": "ratings"}}}}
    assert feed.put("AuthorizationPolicy", "a", by_other) == {"default/reviews", "default/ratings"}
    assert feed.delete("AuthorizationPolicy", "a") == {"default/ratings"}
    assert feed.delete("AuthorizationPolicy", "a") == set()
    # A new service picks up the policies already in force when its entry compiles.
    services(feed, "shop/cart")
    assert [p["name"] for p in compile_authz(feed.state, "shop/cart")] == ["gossamer-system/mesh"]


def test_status_only_writes_touch_nothing() -> None:
    feed = Feed()
    services(feed, "default/reviews")
    spec = {"spec": {"action": "DENY"}}
    assert feed.put("AuthorizationPolicy", "p", spec) == {"default/reviews"}
    assert feed.put("AuthorizationPolicy", "p", {**spec, "status": {"warnings": []}}) == set()


def test_peer_authentication_levels() -> None:
    feed = Feed()
    services(feed, "default/web", "default/legacy")
    assert compile_mtls(feed.state, "default/web") == "STRICT"
    mesh = {"spec": {"mtls": {"mode": "PERMISSIVE"}}}
    assert feed.put("PeerAuthentication", "m", mesh, "gossamer-system") == {
        "default/web",
        "default/legacy",
    }
    assert compile_mtls(feed.state, "default/web") == "PERMISSIVE"
    strict_ns = {"spec": {"mtls": {"mode": "STRICT"}}}
    feed.put("PeerAuthentication", "ns", strict_ns)
    legacy = {
        "spec": {"selector": {"matchLabels": {"service": "legacy"}}, "mtls": mesh["spec"]["mtls"]}
    }
    assert feed.put("PeerAuthentication", "legacy", legacy) == {"default/legacy"}
    assert compile_mtls(feed.state, "default/web") == "STRICT"
    assert compile_mtls(feed.state, "default/legacy") == "PERMISSIVE"


def test_malformed_policy_is_dropped_not_raised() -> None:
    feed = Feed()
    services(feed, "default/web")
    feed.put("AuthorizationPolicy", "p", {"spec": {"action": "DENY"}})
    bad = Record("AuthorizationPolicy", "default", "p", {"spec": None}, 1, 99)
    assert feed.state.apply_event(Event("PUT", bad, 99)) == {"default/web"}
    assert compile_authz(feed.state, "default/web") == []
    assert ("AuthorizationPolicy", "default", "p") in feed.state.malformed
