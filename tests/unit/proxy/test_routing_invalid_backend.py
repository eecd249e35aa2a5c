"""Backends that name nothing valid (an invalid ref, a service the control plane says does
not exist) have no endpoint set, so the sidecar answers their share 500; an empty subset or
a service whose entry has not arrived yet keeps an (empty) set: 503."""

from __future__ import annotations

from typing import Any

from gossamer.proxy.routing import choose_backend
from gossamer.proxy.snapshot import ServiceView, Snapshot


def view_of(backends: list[dict[str, Any]], ghost_entry: bool) -> ServiceView:
    route = {
        "route": "default/web",
        "rule": 0,
        "match": {"path": {"type": "PathPrefix", "value": "/"}, "headers": [], "queryParams": []},
        "backends": backends,
        "filters": [],
        "timeouts": {"request": None, "backendRequest": None},
        "retry": None,
    }
    services: dict[str, Any] = {
        "default/web": {
            "name": "web",
            "namespace": "default",
            "endpoints": [{"id": "w1", "address": "127.0.0.1", "port": 9000, "labels": {}}],
            "routes": [route],
        }
    }
    if ghost_entry:
        services["default/ghost"] = {"name": "ghost", "namespace": "default", "exists": False}
    snap = Snapshot.from_wire({"type": "snapshot", "version": 1, "services": services})
    view = snap.lookup("web")
    assert view is not None
    return view


def test_invalid_and_missing_refs_have_no_backend_but_keep_their_weight() -> None:
    view = view_of(
        [
            {"service": "default/web", "labels": {}, "weight": 1},
            {"service": "default/web", "labels": {"v": "x"}, "weight": 1, "invalid": "kind"},
            {"service": "default/ghost", "labels": {}, "weight": 2},
        ],
        ghost_entry=True,
    )
    [route] = view.routes
    by_service = {(b.service, b.labels_key): b for b in route.backends}
    assert by_service[("default/web", ())].backend is not None
    assert by_service[("default/web", (("v", "x"),))].backend is None
    assert by_service[("default/ghost", ())].backend is None
    # The shares hold: 3 of 4 weights are refs without a backend (a 500 each). Three refs
    # choose by rendezvous hashing of the point, so the share is near 3/4, not exact.
    chosen = [choose_backend(route, (i + 0.5) / 4000) for i in range(4000)]
    unanswerable = sum(ref is not None and ref.backend is None for ref in chosen)
    assert 0.70 < unanswerable / 4000 < 0.80, unanswerable


def test_an_empty_subset_and_a_not_yet_arrived_service_keep_an_empty_set() -> None:
    view = view_of(
        [
            {"service": "default/web", "labels": {"version": "v9"}, "weight": 1},
            {"service": "default/ghost", "labels": {}, "weight": 1},
        ],
        ghost_entry=False,
    )
    for ref in view.routes[0].backends:
        assert ref.backend is not None and ref.backend.endpoints == ()
