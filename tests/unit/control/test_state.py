"""MeshState.apply_event: which service entries each kind of change touches."""

from __future__ import annotations

from typing import Any

import pytest

from gossamer.control.state import MESH_KEY, MeshState, split_key
from gossamer.store.base import Event, Record


class Feed:
    """Writes documents into a MeshState as a store's watch would, one revision each."""

    def __init__(self) -> None:
        self.state = MeshState()
        self.revision = 0
        self.created: dict[tuple[str, str, str], int] = {}

    def record(
        self, kind: str, name: str, doc: dict[str, Any], namespace: str = "default"
    ) -> Record:
        self.revision += 1
        key = (kind, namespace, name)
        created = self.created.setdefault(key, self.revision)
        value = {"kind": kind, "metadata": {"name": name, "namespace": namespace}, **doc}
        value["metadata"]["resourceVersion"] = str(self.revision)
        return Record(kind, namespace, name, value, created, self.revision)

    def put(
        self, kind: str, name: str, doc: dict[str, Any], namespace: str = "default"
    ) -> set[str]:
        record = self.record(kind, name, doc, namespace)
        return self.state.apply_event(Event("PUT", record, self.revision))

    def delete(self, kind: str, name: str, namespace: str = "default") -> set[str]:
        record = self.record(kind, name, {"spec": {}}, namespace)
        self.created.pop((kind, namespace, name), None)
        return self.state.apply_event(Event("DELETE", record, self.revision))


def instance(
    service: str, port: int = 15006, health: str | None = None, **status: Any
) -> dict[str, Any]:
    spec = {"service": service, "address": "127.0.0.1", "port": port, "labels": {}}
    if health is not None:
        status["health"] = health
    return {"spec": spec, "status": status}


def route(*parents: str, backends: tuple[str, ...] = (), **status: Any) -> dict[str, Any]:
    parent_refs = []
    for parent in parents:
        namespace, _, name = parent.rpartition("/")
        parent_refs.append({"name": name, **({"namespace": namespace} if namespace else {})})
    rule = {"backendRefs": [{"name": b} for b in backends]}
    return {"spec": {"parentRefs": parent_refs, "rules": [rule]}, "status": status}


def policy(*targets: str) -> dict[str, Any]:
    return {"spec": {"targetRefs": [{"name": t} for t in targets]}}


@pytest.fixture
def feed() -> Feed:
    return Feed()


def test_instance_touches_only_its_own_service(feed: Feed) -> None:
    feed.put("Service", "reviews", {"spec": {}})
    feed.put("HTTPRoute", "front", route("front", backends=("reviews",)))
    assert feed.put("Instance", "reviews-1", instance("reviews")) == {"default/reviews"}
    assert feed.state.healthy_endpoints("default/reviews")[0]["id"] == "reviews-1"
    assert feed.delete("Instance", "reviews-1") == {"default/reviews"}
    assert feed.state.healthy_endpoints("default/reviews") == []


def test_heartbeat_that_changes_nothing_shown_touches_nothing(feed: Feed) -> None:
    feed.put("Instance", "r-1", instance("reviews", health="healthy", lastHeartbeat="t1"))
    assert (
        feed.put("Instance", "r-1", instance("reviews", health="healthy", lastHeartbeat="t2"))
        == set()
    )


def test_health_change_touches_the_service_and_filters_endpoints(feed: Feed) -> None:
    feed.put("Instance", "r-1", instance("reviews"))
    feed.put("Instance", "r-2", instance("reviews", port=15007))
    assert feed.put("Instance", "r-1", instance("reviews", health="unhealthy")) == {
        "default/reviews"
    }
    assert [e["id"] for e in feed.state.healthy_endpoints("default/reviews")] == ["r-2"]
    assert feed.state.exists("default/reviews")  # unhealthy instances still imply it
    assert feed.put("Instance", "r-1", instance("reviews", health="healthy")) == {"default/reviews"}
    assert [e["id"] for e in feed.state.healthy_endpoints("default/reviews")] == ["r-1", "r-2"]


def test_instance_moving_services_touches_both(feed: Feed) -> None:
    feed.put("Instance", "x-1", instance("old"))
    assert feed.put("Instance", "x-1", instance("new")) == {"default/old", "default/new"}
    assert not feed.state.exists("default/old")
    assert feed.state.exists("default/new")


def test_implied_service_exists_while_it_has_instances(feed: Feed) -> None:
    assert not feed.state.exists("default/catalog")
    feed.put("Instance", "c-1", instance("catalog"), namespace="default")
    feed.put("Instance", "c-2", instance("catalog", health="unhealthy"))
    assert feed.state.service_keys() == {"default/catalog"}
    feed.delete("Instance", "c-1")
    assert feed.state.exists("default/catalog")
    assert feed.delete("Instance", "c-2") == {"default/catalog"}
    assert not feed.state.exists("default/catalog")
    assert feed.state.service_keys() == set()


def test_service_changes(feed: Feed) -> None:
    assert feed.put("Service", "web", {"spec": {"protocol": "HTTP"}}) == {"default/web"}
    # Ports and labels are not part of an ENTRY: nothing to recompile.
    assert (
        feed.put("Service", "web", {"spec": {"protocol": "HTTP", "ports": [{"port": 80}]}}) == set()
    )
    assert feed.put("Service", "web", {"spec": {"protocol": "HTTP2"}}) == {"default/web"}
    assert feed.delete("Service", "web") == {"default/web"}
    assert feed.delete("Service", "web") == set()


def test_route_touches_its_parents_before_and_after(feed: Feed) -> None:
    assert feed.put("HTTPRoute", "r", route("a", "b", backends=("c",))) == {
        "default/a",
        "default/b",
    }
    assert feed.put("HTTPRoute", "r", route("b", "other/d")) == {
        "default/a",
        "default/b",
        "other/d",
    }
    assert [r.name for r in feed.state.routes_for("other/d")] == ["r"]
    assert feed.state.routes_for("default/a") == []
    assert feed.delete("HTTPRoute", "r") == {"default/b", "other/d"}
    assert feed.state.routes_for("default/b") == []


def test_route_status_only_write_touches_nothing(feed: Feed) -> None:
    feed.put("HTTPRoute", "r", route("a", backends=("ghost",)))
    assert (
        feed.put("HTTPRoute", "r", route("a", backends=("ghost",), warnings=["no ghost"])) == set()
    )


def test_route_parent_namespace_defaults_to_the_routes(feed: Feed) -> None:
    assert feed.put("HTTPRoute", "r", route("a"), namespace="shop") == {"shop/a"}


def test_gateway_parents_are_not_service_entries(feed: Feed) -> None:
    doc = {"spec": {"parentRefs": [{"kind": "Gateway", "name": "edge"}, {"name": "a"}]}}
    assert feed.put("HTTPRoute", "r", doc) == {"default/a"}


def test_routes_for_is_oldest_first_then_namespace_name(feed: Feed) -> None:
    feed.put("HTTPRoute", "b", route("default/a"))
    feed.put("HTTPRoute", "c", route("default/a"), namespace="aaa")
    feed.put("HTTPRoute", "a", route("default/a"))
    assert [(r.namespace, r.name) for r in feed.state.routes_for("default/a")] == [
        ("default", "b"),
        ("aaa", "c"),
        ("default", "a"),
    ]


def test_policy_touches_its_targets_and_oldest_wins(feed: Feed) -> None:
    assert feed.put("TrafficPolicy", "p1", policy("a")) == {"default/a"}
    assert feed.put("TrafficPolicy", "p0", policy("a", "b")) == {"default/a", "default/b"}
    chosen = feed.state.policy_for("default/a")
    assert chosen is not None and chosen.name == "p1"  # created first, though named later
    assert feed.put("TrafficPolicy", "p1", policy("c")) == {"default/a", "default/c"}
    chosen = feed.state.policy_for("default/a")
    assert chosen is not None and chosen.name == "p0"
    assert feed.delete("TrafficPolicy", "p0") == {"default/a", "default/b"}
    assert feed.state.policy_for("default/a") is None


def test_mesh_config_default_only(feed: Feed) -> None:
    registry_only = {"spec": {"outboundTrafficPolicy": "REGISTRY_ONLY"}}
    assert feed.put("MeshConfig", "default", registry_only, namespace="other") == set()
    assert feed.put("MeshConfig", "other", registry_only) == set()
    assert feed.put("MeshConfig", "default", registry_only) == {MESH_KEY}
    assert feed.put("MeshConfig", "default", registry_only) == set()
    assert feed.state.mesh_spec == registry_only["spec"]
    assert feed.delete("MeshConfig", "default") == {MESH_KEY}
    assert feed.state.mesh_spec is None


def test_unknown_kind_is_ignored(feed: Feed) -> None:
    assert feed.put("Gadget", "g", {"spec": {"service": "a"}}) == set()


def test_malformed_documents_are_dropped_not_fatal(feed: Feed) -> None:
    feed.put("Instance", "r-1", instance("reviews"))
    assert feed.put("Instance", "r-1", {"spec": {"service": "reviews"}}) == {"default/reviews"}
    assert not feed.state.exists("default/reviews")
    assert ("Instance", "default", "r-1") in feed.state.malformed
    assert feed.put("HTTPRoute", "r", {"spec": {"parentRefs": "a"}}) == set()
    assert feed.put("HTTPRoute", "r", {"spec": None}) == set()
    assert feed.put("TrafficPolicy", "p", {"spec": {"targetRefs": [{"kind": "Service"}]}}) == set()
    assert feed.put("Service", "s", {}) == set()
    assert len(feed.state.malformed) == 4
    # A good version later clears the mark.
    assert feed.put("Instance", "r-1", instance("reviews")) == {"default/reviews"}
    assert ("Instance", "default", "r-1") not in feed.state.malformed


def test_revision_is_the_last_applied(feed: Feed) -> None:
    feed.put("Service", "a", {"spec": {}})
    feed.put("Service", "b", {"spec": {}})
    assert feed.state.revision == 2
    state = MeshState.from_records([feed.record("Service", "c", {"spec": {}})], revision=40)
    assert state.revision == 40 and state.exists("default/c")


@pytest.mark.parametrize("key", ["", "a", "/a", "a/", "a/b/c"])
def test_split_key_rejects_malformed_keys(key: str) -> None:
    with pytest.raises(ValueError, match="namespace/name"):
        split_key(key)


def test_split_key() -> None:
    assert split_key("shop/cart") == ("shop", "cart")
