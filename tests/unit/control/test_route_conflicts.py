"""The pure conflict rule: which of two identical matches on a shared parent loses."""

from __future__ import annotations

from typing import Any

from gossamer.control.route_conflicts import RouteDoc, apply_conflicts, conflict_warnings


def doc(name: str, age: float, parents: list[str], path: str, ns: str = "default") -> RouteDoc:
    spec: dict[str, Any] = {
        "parentRefs": [{"name": p} for p in parents],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}]}],
    }
    return RouteDoc(ns, name, (age, 1), spec)


def test_older_wins_then_namespace_and_name() -> None:
    old, new = doc("zeta", 1.0, ["reviews"], "/a"), doc("alpha", 2.0, ["reviews"], "/a")
    assert conflict_warnings(old, [new]) == []
    [warning] = conflict_warnings(new, [old])
    assert "HTTPRoute default/zeta spec.rules[0].matches[0], which wins" in warning
    same_age = doc("beta", 2.0, ["reviews"], "/a")
    assert conflict_warnings(new, [same_age]) == []  # alpha < beta
    assert "default/alpha" in conflict_warnings(same_age, [new])[0]


def test_no_conflict_without_a_shared_parent_or_with_a_different_match() -> None:
    a = doc("a", 1.0, ["reviews"], "/a")
    assert conflict_warnings(doc("b", 2.0, ["ratings"], "/a"), [a]) == []
    assert conflict_warnings(doc("b", 2.0, ["reviews"], "/b"), [a]) == []
    # Another namespace's parent of the same name is another service.
    assert conflict_warnings(doc("b", 2.0, ["reviews"], "/a", ns="shop"), [a]) == []


def test_the_winner_named_is_the_oldest_of_several() -> None:
    oldest, middle = doc("o", 1.0, ["reviews"], "/a"), doc("m", 2.0, ["reviews"], "/a")
    [warning] = conflict_warnings(doc("n", 3.0, ["reviews"], "/a"), [middle, oldest])
    assert "HTTPRoute default/o " in warning


def test_apply_replaces_the_stored_version_of_an_applied_route() -> None:
    stored = [doc("a", 1.0, ["reviews"], "/a"), doc("b", 2.0, ["reviews"], "/a")]
    moved = doc("b", 2.0, ["reviews"], "/b")  # b no longer conflicts once re-applied
    assert apply_conflicts([moved], stored) == {("default", "b"): []}
