"""Compiler behaviour the golden cases do not pin: keys, closure, encoding, bad documents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gossamer.control.compiler import (
    compile_closure,
    compile_entry,
    compile_policy,
    compile_view,
    encode_entry,
    encode_message,
    needed_services,
    seconds,
)
from gossamer.control.state import MeshState
from gossamer.store.base import Event, Record


def rec(kind: str, name: str, spec: Any, namespace: str = "default", rev: int = 1) -> Record:
    value = {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    return Record(kind, namespace, name, value, rev, rev)


def chain_state(length: int) -> MeshState:
    """s0 -> s1 -> ... -> s{length-1}: each service's only route sends to the next."""
    records = []
    for i in range(length):
        records.append(rec("Service", f"s{i}", {}))
        if i + 1 < length:
            rule = {"backendRefs": [{"name": f"s{i + 1}"}]}
            records.append(
                rec("HTTPRoute", f"s{i}", {"parentRefs": [{"name": f"s{i}"}], "rules": [rule]})
            )
    return MeshState.from_records(records, revision=7)


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("30ms", 0.03),
        ("7ms", 0.007),
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1s500ms", 1.5),
    ],
)
def test_durations_in_seconds(duration: str, expected: float) -> None:
    assert seconds(duration) == expected


def test_default_policy_is_design_md() -> None:
    assert compile_policy(None) == {
        "lb": {"type": "P2CPeakEWMA", "defaultRTT": 0.03, "decay": 10.0, "hashOn": None},
        "timeouts": {"connect": 5.0, "request": 15.0, "idle": 60.0},
        "retryBudget": {"percent": 20, "interval": 10.0, "minRetriesPerSecond": 10},
        "outlier": {"consecutiveErrors": 5, "baseEjectionTime": 30.0, "maxEjectionPercent": 50},
        "limits": {"maxConnections": 1024, "maxPendingRequests": 1024, "maxRequests": 1024},
    }


def test_zero_min_retry_interval_does_not_divide_by_zero() -> None:
    spec = {"retryConstraint": {"minRetryRate": {"count": 4, "interval": "0s"}}}
    assert compile_policy(spec)["retryBudget"]["minRetriesPerSecond"] == 4


def test_closure_follows_backends_transitively() -> None:
    state = chain_state(4)
    view = compile_view(state, ["default/s1"])
    assert list(view["services"]) == ["default/s1", "default/s2", "default/s3"]
    assert view["version"] == 7
    assert view["services"]["default/s3"]["routes"] == []


def test_closure_skips_what_the_caller_already_holds() -> None:
    state = chain_state(4)
    entries = compile_closure(state, ["default/s0"], known={"default/s2": {}})
    assert set(entries) == {"default/s0", "default/s1"}


def test_closure_terminates_on_cycles() -> None:
    rule = {"backendRefs": [{"name": "a"}]}
    records = [
        rec(
            "HTTPRoute",
            "a",
            {"parentRefs": [{"name": "a"}], "rules": [{"backendRefs": [{"name": "b"}]}]},
        ),
        rec("HTTPRoute", "b", {"parentRefs": [{"name": "b"}], "rules": [rule]}),
        rec("Service", "a", {}),
        rec("Service", "b", {}),
    ]
    view = compile_view(MeshState.from_records(records, 1), ["default/a"])
    assert set(view["services"]) == {"default/a", "default/b"}


def test_needed_services_lists_backends_and_mirrors() -> None:
    mirror = {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": "tap", "namespace": "ops"}},
    }
    rule = {
        "backendRefs": [{"name": "x"}, {"name": "y", "namespace": "other"}],
        "filters": [mirror],
    }
    records = [
        rec("Service", "a", {}),
        rec("HTTPRoute", "a", {"parentRefs": [{"name": "a"}], "rules": [rule]}),
    ]
    entry = compile_entry(MeshState.from_records(records, 1), "default/a")
    assert needed_services(entry) == {"default/x", "other/y", "ops/tap"}
    assert entry["routes"][0]["filters"] == [
        {"type": "RequestMirror", "requestMirror": {"service": "ops/tap", "percent": 100}}
    ]


@pytest.mark.parametrize("key", ["reviews", "a/b/c", ""])
def test_malformed_keys_raise_value_error(key: str) -> None:
    with pytest.raises(ValueError):
        compile_entry(MeshState(), key)


def test_unknown_service_entry() -> None:
    entry = compile_entry(MeshState(), "default/nope")
    assert entry["exists"] is False
    assert (entry["endpoints"], entry["routes"], entry["name"]) == ([], [], "nope")


def test_malformed_route_and_policy_do_not_crash_the_compile() -> None:
    bad_filter = {"filters": [{"type": "RequestMirror"}]}  # config field missing
    good = {
        "backendRefs": [{"name": "a"}],
        "matches": [{"path": {"type": "Exact", "value": "/ok"}}],
    }
    records = [
        rec("Service", "a", {}),
        rec("HTTPRoute", "bad", {"parentRefs": [{"name": "a"}], "rules": [bad_filter]}),
        rec("HTTPRoute", "good", {"parentRefs": [{"name": "a"}], "rules": [good]}),
        rec("TrafficPolicy", "p", {"targetRefs": [{"name": "a"}], "timeouts": {"connect": 5}}),
    ]
    entry = compile_entry(MeshState.from_records(records, 1), "default/a")
    assert [r["route"] for r in entry["routes"]] == ["default/good"]
    assert entry["policy"] == compile_policy(None)


def test_encoding_is_compact_sorted_and_independent_of_insertion_order() -> None:
    one = {"b": 1, "a": {"y": [1, 2], "x": "é"}}
    two = {"a": {"x": "é", "y": [1, 2]}, "b": 1}
    assert encode_entry(one) == encode_entry(two) == '{"a":{"x":"é","y":[1,2]},"b":1}'.encode()


def test_view_encodes_to_one_line_that_decodes_to_itself() -> None:
    view = compile_view(chain_state(3), ["default/s0"])
    line = encode_message(view)
    assert b"\n" not in line and b" " not in line
    assert json.loads(line) == view


def test_entry_reflects_events() -> None:
    state = MeshState()
    inst = {
        "kind": "Instance",
        "metadata": {"name": "a-1", "namespace": "default"},
        "spec": {"service": "a", "address": "10.0.0.1", "port": 15006},
        "status": {},
    }
    state.apply_event(Event("PUT", Record("Instance", "default", "a-1", inst, 3, 3), 3))
    entry = compile_entry(state, "default/a")
    assert entry["exists"] is True
    assert entry["endpoints"] == [{"id": "a-1", "address": "10.0.0.1", "port": 15006, "labels": {}}]
    unhealthy = {**inst, "status": {"health": "unhealthy"}}
    state.apply_event(Event("PUT", Record("Instance", "default", "a-1", unhealthy, 3, 4), 4))
    assert compile_entry(state, "default/a")["endpoints"] == []
    assert compile_view(state, ["default/a"])["version"] == 4
