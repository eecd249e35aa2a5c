"""Sticky A/B from config to choice: an HTTPRoute's sessionPersistence, validated by the
model, compiled into ENTRY, and read by independently built sidecar snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from gossamer.control.canary.routes import split_route
from gossamer.control.compiler import compile_view
from gossamer.control.state import MeshState
from gossamer.model import ValidationFailed, parse_document
from gossamer.proxy.balance import hash_key_from_headers
from gossamer.proxy.routing import choose_backend, match_route, point_for_key
from gossamer.proxy.snapshot import LbPolicy, Snapshot
from gossamer.store.base import Record

USERS = [f"user-{i}".encode() for i in range(5000)]


def route_doc(weights: list[int], sticky: dict[str, str]) -> dict[str, Any]:
    spec = split_route(
        None,
        "reviews",
        "default",
        [({"version": "v1"}, weights[0]), ({"version": "v2"}, weights[1])],
    )
    spec["rules"][0]["sessionPersistence"] = sticky
    raw = {
        "apiVersion": "gossamer.dev/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "reviews"},
        "spec": spec,
    }
    return parse_document(raw).to_doc()  # the canonical form the control plane stores


def sidecar_views(doc: dict[str, Any], count: int) -> list[Snapshot]:
    """`count` sidecars, each building its own snapshot from the compiled wire message."""
    records = [
        Record(
            "Service", "default", "reviews", {"metadata": {"name": "reviews"}, "spec": {}}, 1, 1
        ),
        Record("HTTPRoute", "default", "reviews", doc, 2, 2),
    ]
    wire = compile_view(MeshState.from_records(records, 2), ["default/reviews"])
    return [Snapshot.from_wire(wire) for _ in range(count)]


def sticky_policy(wire_route: dict[str, Any]) -> LbPolicy:
    sticky = wire_route["sessionPersistence"]
    header = sticky.get("header")
    cookie = sticky.get("cookie")
    return LbPolicy(
        hash_header=header.encode() if header else None,
        hash_cookie=cookie.encode() if cookie else None,
    )


def assign(snap: Snapshot, headers: list[tuple[bytes, bytes]], policy: LbPolicy) -> str:
    view = snap.lookup("reviews")
    assert view is not None
    route = match_route(view, b"GET", b"/", None, headers)
    assert route is not None
    key = hash_key_from_headers(policy, headers)
    assert key is not None
    ref = choose_backend(route, point_for_key(key))
    assert ref is not None
    return ref.labels["version"]


def test_session_persistence_is_compiled_into_the_entry() -> None:
    for sticky, wire in (
        ({"type": "Header", "sessionName": "X-User-Id"}, {"header": "x-user-id"}),
        ({"sessionName": "sid"}, {"cookie": "sid"}),
    ):
        view = sidecar_views(route_doc([1, 1], sticky), 1)[0]
        records = [
            Record(
                "Service", "default", "reviews", {"metadata": {"name": "reviews"}, "spec": {}}, 1, 1
            ),
            Record("HTTPRoute", "default", "reviews", route_doc([1, 1], sticky), 2, 2),
        ]
        compiled = compile_view(MeshState.from_records(records, 2), ["default/reviews"])
        assert compiled["services"]["default/reviews"]["routes"][0]["sessionPersistence"] == wire
        assert view.lookup("reviews") is not None  # the sidecar loads it


@pytest.mark.parametrize(
    ("sticky", "headers"),
    [
        ({"type": "Header", "sessionName": "x-user-id"}, lambda u: [(b"x-user-id", u)]),
        ({"type": "Cookie", "sessionName": "uid"}, lambda u: [(b"cookie", b"a=1; uid=" + u)]),
    ],
)
def test_a_user_keeps_its_variant_on_every_sidecar_and_widening_moves_users_one_way(
    sticky: dict[str, str], headers: Any
) -> None:
    previous: dict[bytes, str] | None = None
    for weights in ([95, 5], [75, 25], [50, 50], [0, 100]):
        doc = route_doc(weights, sticky)
        sidecars = sidecar_views(doc, 3)
        records = [
            Record(
                "Service", "default", "reviews", {"metadata": {"name": "reviews"}, "spec": {}}, 1, 1
            ),
            Record("HTTPRoute", "default", "reviews", doc, 2, 2),
        ]
        wire_route = compile_view(MeshState.from_records(records, 2), ["default/reviews"])[
            "services"
        ]["default/reviews"]["routes"][0]
        policy = sticky_policy(wire_route)
        current = {}
        for user in USERS:
            seen = {assign(snap, headers(user), policy) for snap in sidecars}
            assert len(seen) == 1, f"{user!r} split across sidecars: {seen}"
            current[user] = seen.pop()
        share = sum(v == "v2" for v in current.values()) / len(USERS)
        assert abs(share - weights[1] / 100) < 0.03, (weights, share)
        if previous is not None:
            moved_back = [u for u in USERS if previous[u] == "v2" and current[u] == "v1"]
            assert moved_back == [], f"widening moved {len(moved_back)} users back to v1"
        previous = current


def test_session_persistence_rejects_bad_names() -> None:
    for bad in (
        {"type": "Header", "sessionName": "x user"},
        {"type": "Query", "sessionName": "a"},
        {},
    ):
        raw = {
            "apiVersion": "gossamer.dev/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "r"},
            "spec": {"parentRefs": [{"name": "reviews"}], "rules": [{"sessionPersistence": bad}]},
        }
        with pytest.raises(ValidationFailed) as info:
            parse_document(raw)
        assert "sessionPersistence" in info.value.errors[0].field
