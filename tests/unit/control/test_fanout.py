"""The fan-out's decisions, fed real MeshState events; no sockets."""

from __future__ import annotations

import json
from typing import Any

from gossamer.control.fanout import Fanout
from gossamer.control.state import MeshState
from gossamer.store.base import Event, Record


class Feed:
    """Writes store events into a fan-out the way the server's watch loop does."""

    def __init__(self) -> None:
        self.revision = 0
        self.fanout = Fanout(MeshState(), wall_clock=lambda: 0.0)

    def put(
        self, kind: str, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None
    ) -> None:
        self.revision += 1
        value = {
            "apiVersion": "gossamer.dev/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
            "status": status or {},
        }
        record = Record(kind, "default", name, value, self.revision, self.revision)
        self.fanout.note_event(Event("PUT", record, self.revision))

    def instance(self, name: str, service: str, port: int, health: str = "healthy") -> None:
        spec = {"service": service, "address": "127.0.0.1", "port": port}
        self.put("Instance", name, spec, {"health": health})


def lines(data: bytes) -> dict[str, Any]:
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    return json.loads(data)


def test_snapshot_holds_the_view_and_its_closure() -> None:
    feed = Feed()
    feed.instance("reviews-1", "reviews", 9001)
    feed.instance("ratings-1", "ratings", 9002)
    feed.put(
        "HTTPRoute",
        "reviews",
        {"parentRefs": [{"name": "reviews"}], "rules": [{"backendRefs": [{"name": "ratings"}]}]},
    )
    feed.fanout.flush()
    _, first = feed.fanout.subscribe("web-1", "web", "default", ["default/reviews"])
    snap = lines(first)
    assert snap["type"] == "snapshot" and snap["version"] == 3 and snap["protocol"] == 1
    assert set(snap["services"]) == {"default/reviews", "default/ratings"}
    assert snap["services"]["default/ratings"]["endpoints"][0]["port"] == 9002
    assert snap["mesh"] == {"outboundTrafficPolicy": "ALLOW_ANY"}


def test_change_is_encoded_once_and_shared_by_every_watcher() -> None:
    feed = Feed()
    feed.instance("reviews-1", "reviews", 9001)
    feed.fanout.flush()
    subs = [
        feed.fanout.subscribe(f"p-{i}", "web", "default", ["default/reviews"])[0] for i in range(50)
    ]
    other, _ = feed.fanout.subscribe("other", "web", "default", ["default/ratings"])
    feed.instance("reviews-2", "reviews", 9003)
    assert feed.fanout.flush() == 1
    assert feed.fanout.cached_entries() == 2
    shared = feed.fanout._cache["default/reviews"].data
    for sub in subs:
        assert sub.wake.is_set()
        line = feed.fanout.next_line(sub)
        assert line is not None and shared in line
        delta = lines(line)
        assert delta["type"] == "delta" and delta["version"] == 2
        assert [e["id"] for e in delta["services"]["default/reviews"]["endpoints"]] == [
            "reviews-1",
            "reviews-2",
        ]
        assert delta["removed"] == []
    assert not other.wake.is_set()
    assert feed.fanout.next_line(other) is None


def test_burst_of_changes_becomes_one_delta_with_the_latest_state() -> None:
    feed = Feed()
    feed.fanout.flush()
    sub, _ = feed.fanout.subscribe("p", "web", "default", ["default/reviews"])
    for i in range(1000):
        feed.instance("reviews-1", "reviews", 1000 + i)
    feed.fanout.flush()
    delta = lines(feed.fanout.next_line(sub) or b"")
    assert delta["version"] == 1000
    assert delta["services"]["default/reviews"]["endpoints"][0]["port"] == 1999
    assert feed.fanout.next_line(sub) is None


def test_status_only_write_wakes_nobody() -> None:
    feed = Feed()
    feed.instance("reviews-1", "reviews", 9001)
    feed.fanout.flush()
    sub, _ = feed.fanout.subscribe("p", "web", "default", ["default/reviews"])
    feed.put("Service", "reviews", {})  # declaring an implied service changes no ENTRY byte
    assert feed.fanout.flush() == 0
    assert not sub.wake.is_set()


def test_route_to_a_new_backend_grows_the_view_and_dropping_it_removes_it() -> None:
    feed = Feed()
    feed.instance("reviews-1", "reviews", 9001)
    feed.instance("ratings-1", "ratings", 9002)
    feed.fanout.flush()
    sub, _ = feed.fanout.subscribe("p", "web", "default", ["default/reviews"])
    feed.put(
        "HTTPRoute",
        "reviews",
        {"parentRefs": [{"name": "reviews"}], "rules": [{"backendRefs": [{"name": "ratings"}]}]},
    )
    feed.fanout.flush()
    delta = lines(feed.fanout.next_line(sub) or b"")
    assert set(delta["services"]) == {"default/reviews", "default/ratings"}
    assert sub.view == {"default/reviews", "default/ratings"}
    feed.put(
        "HTTPRoute",
        "reviews",
        {"parentRefs": [{"name": "reviews"}], "rules": [{"backendRefs": [{"name": "reviews"}]}]},
    )
    feed.fanout.flush()
    delta = lines(feed.fanout.next_line(sub) or b"")
    assert delta["removed"] == ["default/ratings"]
    assert "default/ratings" not in feed.fanout._cache  # nobody watches it any more


def test_on_demand_watch_adds_an_entry_and_unknown_names_get_exists_false() -> None:
    feed = Feed()
    feed.instance("ratings-1", "ratings", 9002)
    feed.fanout.flush()
    sub, _ = feed.fanout.subscribe("p", "web", "default", [])
    assert feed.fanout.add_watch("p", ["default/ratings", "default/nope"]) == 1
    delta = lines(feed.fanout.next_line(sub) or b"")
    assert delta["services"]["default/ratings"]["exists"] is True
    assert delta["services"]["default/nope"]["exists"] is False
    feed.instance("nope-1", "nope", 9003)
    feed.fanout.flush()
    delta = lines(feed.fanout.next_line(sub) or b"")
    assert delta["services"]["default/nope"]["exists"] is True


def test_acks_are_tracked_and_capped_at_what_was_sent() -> None:
    feed = Feed()
    feed.instance("reviews-1", "reviews", 9001)
    feed.fanout.flush()
    sub, _ = feed.fanout.subscribe("p", "web", "default", ["default/reviews"])
    assert feed.fanout.ack("p", 1)
    assert sub.acked_version == 1
    assert feed.fanout.ack("p", 99)
    assert sub.acked_version == 1  # cannot ack what it was never sent
    assert not feed.fanout.ack("ghost", 1)
    listing = feed.fanout.listing()
    assert listing["latest"] == 1
    assert listing["items"][0]["ackedVersion"] == 1 and listing["items"][0]["watching"] == 1


def test_disconnect_releases_shared_entries_and_reconnect_replaces_the_old_stream() -> None:
    feed = Feed()
    feed.fanout.flush()
    first, _ = feed.fanout.subscribe("p", "web", "default", ["default/a", "default/b"])
    second, _ = feed.fanout.subscribe("p", "web", "default", ["default/a"])
    assert first.replaced and not first.connected and first.wake.is_set()
    assert feed.fanout.cached_entries() == 1
    feed.fanout.unsubscribe(second)
    assert feed.fanout.cached_entries() == 0
    assert feed.fanout.listing()["items"][0]["connected"] is False


def test_mesh_change_goes_to_everyone() -> None:
    feed = Feed()
    feed.fanout.flush()
    sub, _ = feed.fanout.subscribe("p", "web", "default", [])
    feed.put("MeshConfig", "default", {"outboundTrafficPolicy": "REGISTRY_ONLY"})
    feed.fanout.flush()
    delta = lines(feed.fanout.next_line(sub) or b"")
    assert delta["mesh"] == {"outboundTrafficPolicy": "REGISTRY_ONLY"}


async def test_wait_for_sync_names_proxies_that_did_not_ack() -> None:
    feed = Feed()
    feed.fanout.flush()
    fast, _ = feed.fanout.subscribe("fast", "web", "default", ["default/reviews"])
    slow, _ = feed.fanout.subscribe("slow", "web", "default", ["default/reviews"])
    idle, _ = feed.fanout.subscribe("idle", "web", "default", ["default/other"])
    feed.instance("reviews-1", "reviews", 9001)
    feed.fanout.flush()
    for sub in (fast, slow):
        feed.fanout.next_line(sub)
    feed.fanout.ack("fast", 1)
    result = await feed.fanout.wait_for_sync(1, 0.05)
    assert result == {"complete": False, "pending": ["slow"]}
    feed.fanout.ack("slow", 1)
    assert await feed.fanout.wait_for_sync(1, 0.05) == {"complete": True, "pending": []}
    assert idle.acked_version == 0


def test_disconnected_proxies_are_remembered_up_to_a_bound() -> None:
    from gossamer.control.fanout import MAX_REMEMBERED_DISCONNECTED

    feed = Feed()
    feed.fanout.flush()
    for i in range(MAX_REMEMBERED_DISCONNECTED + 5):
        sub, _ = feed.fanout.subscribe(f"p-{i:05d}", "web", "default", ["default/a"])
        feed.fanout.unsubscribe(sub)
    feed.fanout.subscribe("live", "web", "default", [])
    items = feed.fanout.listing()["items"]
    assert len(items) == MAX_REMEMBERED_DISCONNECTED + 1
    ids = {i["id"] for i in items}
    assert "p-00000" not in ids and "p-00004" not in ids  # the longest gone are forgotten
    assert "p-00005" in ids and "live" in ids
    assert sum(i["connected"] for i in items) == 1
    assert not feed.fanout.ack("p-00004", 0)  # gone: no stream to ack on
    assert feed.fanout.cached_entries() == 0


def test_identical_deltas_are_one_shared_line_until_entries_change() -> None:
    feed = Feed()
    feed.instance("reviews-1", "reviews", 9001)
    feed.fanout.flush()
    a, _ = feed.fanout.subscribe("a", "web", "default", ["default/reviews"])
    b, _ = feed.fanout.subscribe("b", "web", "default", ["default/reviews"])
    feed.instance("reviews-1", "reviews", 9002)
    feed.fanout.flush()
    first, second = feed.fanout.next_line(a), feed.fanout.next_line(b)
    assert first is not None and first is second  # assembled once, written to both
    # An entry dropped by its last watcher and compiled again later must not be served
    # from a line cached with its older bytes.
    feed.fanout.unsubscribe(a)
    feed.fanout.unsubscribe(b)
    feed.instance("reviews-1", "reviews", 9003)  # no flush yet: nobody watches it
    c, _ = feed.fanout.subscribe("c", "web", "default", [])
    feed.fanout.add_watch("c", ["default/reviews"])
    delta = lines(feed.fanout.next_line(c) or b"")
    assert delta["services"]["default/reviews"]["endpoints"][0]["port"] == 9003
