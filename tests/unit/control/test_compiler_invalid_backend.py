"""A backendRef that names nothing valid keeps its share in the ENTRY, marked invalid (the
sidecar answers it 500 invalid_backend); it is not pulled into the view."""

from __future__ import annotations

from typing import Any

from gossamer.control.compiler import compile_closure, compile_entry, needed_services
from gossamer.control.state import MeshState
from gossamer.store.base import Record


def rec(kind: str, name: str, spec: Any) -> Record:
    value = {"kind": kind, "metadata": {"name": name, "namespace": "default"}, "spec": spec}
    return Record(kind, "default", name, value, 1, 1)


def state(*refs: dict[str, Any]) -> MeshState:
    route = {"parentRefs": [{"name": "reviews"}], "rules": [{"backendRefs": list(refs)}]}
    return MeshState.from_records(
        [rec("Service", "reviews", {}), rec("HTTPRoute", "reviews", route)], revision=1
    )


def test_a_ref_of_another_kind_keeps_its_weight_marked_invalid() -> None:
    mesh = state(
        {"name": "reviews", "labels": {"version": "v1"}, "weight": 3},
        {"kind": "Deployment", "name": "ratings", "weight": 1},
        {"group": "apps", "kind": "Service", "name": "other", "weight": 2},
        {"name": "zero", "weight": 0},
    )
    entry = compile_entry(mesh, "default/reviews")
    backends = entry["routes"][0]["backends"]
    assert [(b["service"], b["weight"], "invalid" in b) for b in backends] == [
        ("default/reviews", 3, False),
        ("default/ratings", 1, True),
        ("default/other", 2, True),
    ]
    assert "core/Deployment is not a Service" in backends[1]["invalid"]
    assert "apps/Service is not a Service" in backends[2]["invalid"]
    assert needed_services(entry) == {"default/reviews"}
    assert set(compile_closure(mesh, ["default/reviews"])) == {"default/reviews"}


def test_a_missing_service_is_sent_as_not_existing_for_the_sidecar_to_answer_500() -> None:
    mesh = state({"name": "ghost"})
    views = compile_closure(mesh, ["default/reviews"])
    assert views["default/ghost"]["exists"] is False
    assert "invalid" not in views["default/reviews"]["routes"][0]["backends"][0]
