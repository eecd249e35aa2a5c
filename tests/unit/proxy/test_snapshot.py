"""Snapshot loading, deltas (object and state reuse), host lookup and wire validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossamer.proxy.routing import choose_backend
from gossamer.proxy.snapshot import Snapshot, service_key_for_host


def ep(ep_id: str, port: int, **labels: str) -> dict[str, Any]:
    return {"id": ep_id, "address": "127.0.0.1", "port": port, "labels": labels}


def entry(
    name: str,
    endpoints: list[dict[str, Any]],
    routes: list[dict[str, Any]] | None = None,
    namespace: str = "default",
    policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "exists": True,
        "protocol": "HTTP",
        "endpoints": endpoints,
        "routes": routes or [],
    }
    if policy is not None:
        out["policy"] = policy
    return out


def to(service: str, weight: int = 1, **labels: str) -> dict[str, Any]:
    return {
        "route": "default/frontend",
        "rule": 0,
        "match": {"path": {"type": "PathPrefix", "value": "/"}, "headers": [], "queryParams": []},
        "backends": [{"service": service, "labels": labels, "weight": weight}],
        "filters": [],
        "timeouts": {"request": None, "backendRequest": None},
        "retry": None,
    }


def snapshot_msg(**services: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "snapshot",
        "protocol": 1,
        "version": 41,
        "mesh": {"outboundTrafficPolicy": "REGISTRY_ONLY"},
        "services": {f"{e['namespace']}/{e['name']}": e for e in services.values()},
    }


def base() -> Snapshot:
    return Snapshot.from_wire(
        snapshot_msg(
            reviews=entry(
                "reviews", [ep("r1", 15006, version="v1"), ep("r2", 15007, version="v2")]
            ),
            ratings=entry("ratings", [ep("t1", 15008)], namespace="shop"),
            frontend=entry("frontend", [ep("f1", 15009)], routes=[to("default/reviews")]),
        )
    )


# --- loading and lookup ---------------------------------------------------------------------


def test_from_wire_reads_version_mesh_and_policy_defaults() -> None:
    snap = base()
    assert snap.version == 41 and snap.outbound_policy == "REGISTRY_ONLY"
    view = snap.lookup("reviews")
    assert view is not None and view.key == "default/reviews" and view.exists
    p = view.policy
    assert p.lb.type == "P2CPeakEWMA" and p.lb.default_rtt == 0.03 and p.lb.decay == 10.0
    assert (p.connect_timeout, p.request_timeout, p.idle_timeout) == (5.0, 15.0, 60.0)
    assert view.outlier.consecutive == 5 and view.outlier.max_percent == 50
    assert view.limits.max_requests == 1024 and view.retry_budget.ratio == 0.2


def test_policy_from_wire() -> None:
    policy = {
        "lb": {
            "type": "ConsistentHash",
            "defaultRTT": 0.05,
            "decay": 5.0,
            "hashOn": {"header": "X-User"},
        },
        "timeouts": {"connect": 1.0, "request": 2.0, "idle": 3.0},
        "retryBudget": {"percent": 10, "interval": 5.0, "minRetriesPerSecond": 2},
        "outlier": {"consecutiveErrors": 3, "baseEjectionTime": 10.0, "maxEjectionPercent": 20},
        "limits": {"maxConnections": 7, "maxPendingRequests": 8, "maxRequests": 9},
    }
    snap = Snapshot.from_wire(snapshot_msg(a=entry("a", [ep("a1", 80)], policy=policy)))
    view = snap.lookup("a")
    assert view is not None
    assert view.policy.lb.hash_header == b"x-user" and view.policy.lb.type == "ConsistentHash"
    assert view.policy.connect_timeout == 1.0
    assert (view.limits.max_connections, view.limits.max_pending, view.limits.max_requests) == (
        7,
        8,
        9,
    )
    assert view.outlier.consecutive == 3 and view.outlier.base_ejection == 10.0
    assert view.retry_budget.ratio == 0.1 and view.retry_budget.min_per_second == 2
    assert type(view.default_backend.balancer).__name__ == "ConsistentHashBalancer"


@pytest.mark.parametrize(
    "host",
    [
        "reviews",
        "REVIEWS",
        "reviews:9080",
        "reviews.default",
        "reviews.default:80",
        "reviews.default.svc",
        "Reviews.Default.Svc.Cluster.Local",
        "reviews.default.svc.cluster.local:8080",
        "reviews.default.svc.cluster.local.",
    ],
)
def test_lookup_accepts_every_mesh_form(host: str) -> None:
    view = base().lookup(host)
    assert view is not None and view.key == "default/reviews"


def test_lookup_other_namespace_and_misses() -> None:
    snap = base()
    ratings = snap.lookup("ratings.shop")
    assert ratings is not None and ratings.key == "shop/ratings"
    assert snap.lookup("ratings") is None  # bare names mean the proxy's own namespace
    assert snap.lookup("ratings.default") is None
    assert snap.lookup("example.com") is None
    assert snap.lookup("") is None
    assert snap.lookup("[::1]:80") is None


def test_proxy_namespace_sets_bare_name_meaning() -> None:
    msg = snapshot_msg(ratings=entry("ratings", [ep("t1", 80)], namespace="shop"))
    snap = Snapshot.from_wire(msg, namespace="shop")
    assert snap.lookup("ratings") is not None
    assert snap.key_for_host("catalog:80") == "shop/catalog"


def test_key_for_host() -> None:
    assert service_key_for_host("reviews") == "default/reviews"
    assert service_key_for_host("Reviews.Prod:80") == "prod/reviews"
    assert service_key_for_host("reviews.prod.svc.cluster.local") == "prod/reviews"
    assert service_key_for_host("10.0.0.1:80") is None
    assert service_key_for_host("www.example.com") is None
    assert service_key_for_host("") is None


def test_not_existing_service_answers_at_once() -> None:
    msg = snapshot_msg()
    msg["services"]["default/ghost"] = {"name": "ghost", "namespace": "default", "exists": False}
    view = Snapshot.from_wire(msg).lookup("ghost")
    assert view is not None and not view.exists and view.endpoints == () and view.routes == ()


def test_backends_resolve_across_services_and_subsets() -> None:
    snap = base()
    frontend = snap.lookup("frontend")
    assert frontend is not None
    ref = choose_backend(frontend.routes[0], 0.5)
    assert ref is not None and ref.backend is not None
    assert [e.id for e in ref.backend.endpoints] == ["r1", "r2"]
    assert frontend.backend("default/reviews") is ref.backend
    assert frontend.backend("default/nope") is None
    subset = snap.backend("default/reviews", {"version": "v2"})
    assert subset is not None and [e.id for e in subset.endpoints] == ["r2"]
    # One balancer per subset: the same Backend every time.
    assert snap.backend("default/reviews", {"version": "v2"}) is subset


def test_backend_naming_a_missing_service_is_empty() -> None:
    snap = Snapshot.from_wire(
        snapshot_msg(f=entry("frontend", [ep("f1", 80)], routes=[to("default/later")]))
    )
    frontend = snap.lookup("frontend")
    assert frontend is not None
    ref = choose_backend(frontend.routes[0], 0.1)
    assert ref is not None and ref.backend is not None and ref.backend.endpoints == ()
    # When it arrives, the route points at it.
    snap2 = snap.apply(
        {
            "type": "delta",
            "version": 42,
            "services": {"default/later": entry("later", [ep("l1", 81)])},
        }
    )
    frontend2 = snap2.lookup("frontend")
    assert frontend2 is not None
    ref2 = choose_backend(frontend2.routes[0], 0.1)
    assert ref2 is not None and ref2.backend is not None
    assert [e.id for e in ref2.backend.endpoints] == ["l1"]


# --- deltas ---------------------------------------------------------------------------------


def test_delta_keeps_unchanged_objects_and_state() -> None:
    snap = base()
    reviews = snap.lookup("reviews")
    ratings = snap.lookup("ratings.shop")
    frontend = snap.lookup("frontend")
    assert reviews is not None and ratings is not None and frontend is not None
    r1 = reviews.endpoints[0]
    r1.load.pending = 3
    r1.outlier.ejected_until = 99.0
    assert reviews.limits.try_acquire_request()

    delta = {
        "type": "delta",
        "protocol": 1,
        "version": 42,
        "services": {
            "default/reviews": entry(
                "reviews", [ep("r1", 15006, version="v1"), ep("r3", 15010, version="v2")]
            )
        },
        "removed": [],
    }
    new = snap.apply(delta)
    assert new.version == 42 and snap.version == 41
    assert new.lookup("ratings.shop") is ratings  # untouched
    new_reviews = new.lookup("reviews")
    assert new_reviews is not None and new_reviews is not reviews
    assert [e.id for e in new_reviews.endpoints] == ["r1", "r3"]
    kept = new_reviews.endpoints[0]
    assert kept.load is r1.load and kept.outlier is r1.outlier  # state survives
    assert new_reviews.endpoints[1].load.pending == 0
    assert new_reviews.limits is reviews.limits and new_reviews.limits.active_requests == 1
    # frontend routes to reviews: relinked to the new endpoints, matchers shared.
    new_frontend = new.lookup("frontend")
    assert new_frontend is not None and new_frontend is not frontend
    assert new_frontend.endpoints is frontend.endpoints
    ref = choose_backend(new_frontend.routes[0], 0.5)
    assert ref is not None and ref.backend is not None
    assert [e.id for e in ref.backend.endpoints] == ["r1", "r3"]
    # The old snapshot still answers with the old state.
    old_ref = choose_backend(frontend.routes[0], 0.5)
    assert old_ref is not None and old_ref.backend is not None
    assert [e.id for e in old_ref.backend.endpoints] == ["r1", "r2"]


def test_moved_endpoint_starts_fresh() -> None:
    snap = base()
    reviews = snap.lookup("reviews")
    assert reviews is not None
    reviews.endpoints[0].outlier.ejected_until = 99.0
    delta = {
        "type": "delta",
        "version": 42,
        "services": {"default/reviews": entry("reviews", [ep("r1", 16000)])},
    }
    moved = snap.apply(delta).lookup("reviews")
    assert moved is not None and moved.endpoints[0].outlier.ejected_until < 0


def test_delta_removes_services_and_updates_mesh() -> None:
    snap = base()
    new = snap.apply(
        {
            "type": "delta",
            "version": 43,
            "services": {},
            "removed": ["shop/ratings"],
            "mesh": {"outboundTrafficPolicy": "ALLOW_ANY"},
        }
    )
    assert new.lookup("ratings.shop") is None and snap.lookup("ratings.shop") is not None
    assert new.outbound_policy == "ALLOW_ANY" and snap.outbound_policy == "REGISTRY_ONLY"
    assert new.lookup("frontend") is snap.lookup("frontend")


def test_removing_a_backend_service_empties_dependent_routes() -> None:
    snap = base().apply({"type": "delta", "version": 44, "removed": ["default/reviews"]})
    frontend = snap.lookup("frontend")
    assert frontend is not None
    ref = choose_backend(frontend.routes[0], 0.5)
    assert ref is not None and ref.backend is not None and ref.backend.endpoints == ()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sets(st.integers(0, 5), max_size=4)),
        max_size=8,
    )
)
def test_applying_deltas_equals_loading_the_result(changes: list[tuple[str, set[int]]]) -> None:
    """Any sequence of deltas gives the same view as a fresh snapshot of the final state."""
    state: dict[str, dict[str, Any]] = {
        "a": entry("a", [ep("a0", 80)], routes=[to("default/b")]),
        "b": entry("b", [ep("b0", 80)]),
    }
    snap = Snapshot.from_wire(snapshot_msg(**copy.deepcopy(state)))
    for version, (name, ids) in enumerate(changes, start=42):
        if not ids and name in state:
            del state[name]
            snap = snap.apply({"type": "delta", "version": version, "removed": [f"default/{name}"]})
            continue
        routes = [to(f"default/{'b' if name != 'b' else 'c'}")] if name in "ac" else []
        state[name] = entry(name, [ep(f"{name}{i}", 80 + i) for i in sorted(ids)], routes=routes)
        snap = snap.apply(
            {
                "type": "delta",
                "version": version,
                "services": {f"default/{name}": copy.deepcopy(state[name])},
            }
        )
    fresh = Snapshot.from_wire(snapshot_msg(**copy.deepcopy(state)))

    def shape(s: Snapshot) -> dict[str, Any]:
        out = {}
        for key, view in s.services.items():
            targets = []
            for r in view.routes:
                ref = choose_backend(r, 0.5)
                assert ref is not None and ref.backend is not None
                targets.append([e.id for e in ref.backend.endpoints])
            out[key] = ([e.id for e in view.endpoints], targets)
        return out

    assert shape(snap) == shape(fresh)


# --- malformed input ------------------------------------------------------------------------


def broken(mutate: Any) -> dict[str, Any]:
    msg = snapshot_msg(reviews=entry("reviews", [ep("r1", 15006)], routes=[to("default/reviews")]))
    mutate(msg, msg["services"]["default/reviews"])
    return msg


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m, e: m.update(type="delta"), "type"),
        (lambda m, e: m.update(protocol=2), "protocol"),
        (lambda m, e: m.update(version="41"), "version"),
        (lambda m, e: m.update(services=[]), "services"),
        (lambda m, e: m.update(mesh={"outboundTrafficPolicy": "NOPE"}), "outboundTrafficPolicy"),
        (lambda m, e: m["services"].update({"bad key": {}}), "namespace/name"),
        (lambda m, e: e.update(endpoints="x"), "endpoints"),
        (lambda m, e: e["endpoints"][0].update(port=70000), "endpoints[0].port"),
        (lambda m, e: e["endpoints"][0].update(port="80"), "endpoints[0].port"),
        (lambda m, e: e["endpoints"][0].pop("id"), "endpoints[0].id"),
        (lambda m, e: e["endpoints"].append(ep("r1", 1)), "duplicate"),
        (lambda m, e: e["endpoints"][0].update(labels={"a": 1}), "labels"),
        (lambda m, e: e.update(exists="yes"), "exists"),
        (lambda m, e: e.update(name="other"), "differ from key"),
        (lambda m, e: e["routes"][0]["match"]["path"].update(type="Glob"), "match.path.type"),
        (
            lambda m, e: e["routes"][0]["match"]["path"].update(
                type="RegularExpression", value="("
            ),
            "match.path.value",
        ),
        (
            lambda m, e: e["routes"][0]["match"].update(headers=[{"name": "x", "value": 1}]),
            "headers[0].value",
        ),
        (
            lambda m, e: e["routes"][0]["match"].update(
                headers=[{"type": "Prefix", "name": "x", "value": "1"}]
            ),
            "headers[0].type",
        ),
        (
            lambda m, e: e["routes"][0]["match"].update(queryParams=[{"name": "q"}]),
            "queryParams[0].value",
        ),
        (lambda m, e: e["routes"][0]["backends"][0].update(weight=-1), "weight"),
        (lambda m, e: e["routes"][0]["backends"][0].update(weight=0), "all weights are zero"),
        (
            lambda m, e: e["routes"][0]["backends"][0].update(service="reviews"),
            "backends[0].service",
        ),
        (lambda m, e: e["routes"][0].update(timeouts={"request": "10s"}), "timeouts.request"),
        (lambda m, e: e["routes"][0].update(retry={"attempts": 2, "codes": "502"}), "retry.codes"),
        (lambda m, e: e["routes"][0].update(filters=[{"type": "RequestMirror"}]), "requestMirror"),
        (lambda m, e: e.update(policy={"lb": {"type": "Random"}}), "policy.lb.type"),
        (lambda m, e: e.update(policy={"timeouts": {"connect": -1}}), "policy.timeouts.connect"),
        (
            lambda m, e: e.update(policy={"limits": {"maxRequests": 1.5}}),
            "policy.limits.maxRequests",
        ),
        (lambda m, e: e.update(policy={"lb": {"decay": float("nan")}}), "policy.lb.decay"),
    ],
)
def test_malformed_wire_raises_value_error_naming_the_field(mutate: Any, field: str) -> None:
    with pytest.raises(
        ValueError, match=field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
    ):
        Snapshot.from_wire(broken(mutate))


def test_malformed_delta_raises_and_leaves_snapshot_usable() -> None:
    snap = base()
    with pytest.raises(ValueError, match="removed"):
        snap.apply({"type": "delta", "version": 42, "removed": "default/reviews"})
    with pytest.raises(ValueError, match="type"):
        snap.apply({"type": "snapshot", "version": 42})
    with pytest.raises(ValueError, match="delta"):
        snap.apply(["not", "an", "object"])
    assert snap.lookup("reviews") is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from(["entry", "route", "policy", "endpoint", "match"]))
def test_garbage_anywhere_is_a_value_error_or_a_valid_snapshot(garbage: Any, where: str) -> None:
    msg = broken(lambda m, e: None)
    e = msg["services"]["default/reviews"]
    if where == "entry":
        msg["services"]["default/reviews"] = garbage
    elif where == "route":
        e["routes"][0] = garbage
    elif where == "policy":
        e["policy"] = garbage
    elif where == "endpoint":
        e["endpoints"][0] = garbage
    else:
        e["routes"][0]["match"] = garbage
    try:
        snap = Snapshot.from_wire(msg)
    except ValueError:
        return
    view = snap.lookup("reviews")
    assert view is not None
    from gossamer.proxy.routing import match_route

    match_route(view, "GET", "/", "a=b", [(b"x", b"y")])


def test_mirrors_resolve_and_follow_their_target() -> None:
    mirrored = to("default/reviews")
    mirrored["filters"] = [
        {"type": "RequestMirror", "requestMirror": {"service": "default/shadow", "percent": 25}}
    ]
    snap = Snapshot.from_wire(
        snapshot_msg(
            reviews=entry("reviews", [ep("r1", 80)]),
            shadow=entry("shadow", [ep("s1", 81)]),
            frontend=entry("frontend", [ep("f1", 82)], routes=[mirrored]),
        )
    )
    frontend = snap.lookup("frontend")
    assert frontend is not None
    (mirror,) = frontend.routes[0].mirrors
    assert mirror.percent == 25 and mirror.backend is not None
    assert [e.id for e in mirror.backend.endpoints] == ["s1"]
    assert frontend.backend("default/shadow") is mirror.backend
    later = snap.apply(
        {
            "type": "delta",
            "version": 42,
            "services": {"default/shadow": entry("shadow", [ep("s2", 83)])},
        }
    )
    frontend2 = later.lookup("frontend")
    assert frontend2 is not None and frontend2 is not frontend
    backend = frontend2.routes[0].mirrors[0].backend
    assert backend is not None and [e.id for e in backend.endpoints] == ["s2"]


def test_ejection_survives_a_delta() -> None:
    snap = base()
    reviews = snap.lookup("reviews")
    assert reviews is not None
    for _ in range(5):
        reviews.outlier.record(reviews.endpoints[0], 0.0, ok=False)
    assert reviews.outlier.is_ejected(reviews.endpoints[0], 1.0)
    new = snap.apply(
        {
            "type": "delta",
            "version": 42,
            "services": {
                "default/reviews": entry(
                    "reviews", [ep("r1", 15006, version="v1"), ep("r2", 15007, version="v3")]
                )
            },
        }
    )
    new_reviews = new.lookup("reviews")
    assert new_reviews is not None
    picks = {new_reviews.default_backend.balancer.pick(1.0) for _ in range(50)}
    assert [p.id for p in picks if p is not None] == ["r2"]


def test_cookie_hash_policy() -> None:
    policy = {"lb": {"type": "ConsistentHash", "hashOn": {"cookie": "session"}}}
    snap = Snapshot.from_wire(snapshot_msg(a=entry("a", [ep("a1", 80)], policy=policy)))
    view = snap.lookup("a")
    assert view is not None
    assert view.policy.lb.hash_cookie == b"session" and view.policy.lb.hash_header is None
