import io
import json
from datetime import UTC, datetime

import pytest
import yaml

from gossamer.cli.columns import proxies_table, resource_table, services_table
from gossamer.cli.output import (
    apply_lines,
    format_age,
    format_warning,
    render_table,
    to_json,
    to_yaml,
)

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)

ROUTE = {
    "apiVersion": "gossamer.dev/v1",
    "kind": "HTTPRoute",
    "metadata": {
        "name": "reviews",
        "namespace": "shop",
        "creationTimestamp": "2026-01-02T11:55:00Z",
    },
    "spec": {
        "parentRefs": [{"name": "reviews"}],
        "hostnames": ["reviews.example"],
        "rules": [
            {
                "backendRefs": [
                    {"name": "reviews", "labels": {"version": "v1"}, "weight": 90},
                    {"name": "reviews", "namespace": "canary", "weight": 10},
                ]
            }
        ],
    },
    "status": {"warnings": ["backendRef canary/reviews names no service"]},
}


@pytest.mark.parametrize(
    ("created", "age"),
    [
        ("2026-01-02T11:59:18Z", "42s"),
        ("2026-01-02T11:53:00+00:00", "7m"),
        ("2026-01-02T09:00:00Z", "3h"),
        ("2026-01-02T10:30:00Z", "90m"),
        ("2026-01-01T00:00:00Z", "36h"),
        ("2025-12-20T12:00:00Z", "13d"),
        ("2026-01-02T12:00:05Z", "0s"),  # a clock a little ahead is not a negative age
        (None, "<unknown>"),
        ("yesterday", "<unknown>"),
    ],
)
def test_age_is_short_and_never_fails(created: object, age: str) -> None:
    assert format_age(created, NOW) == age


def test_route_table_columns_and_wide_extras() -> None:
    headers, rows = resource_table("HTTPRoute", [ROUTE], wide=False, all_namespaces=True, now=NOW)
    assert headers == ["NAMESPACE", "NAME", "PARENTS", "RULES", "BACKENDS", "WARNINGS", "AGE"]
    assert rows == [
        ["shop", "reviews", "reviews", "1", "reviews{version=v1}:90,canary/reviews:10", "1", "5m"]
    ]
    headers, rows = resource_table("HTTPRoute", [ROUTE], wide=True, all_namespaces=False, now=NOW)
    assert "HOSTNAMES" in headers and "NAMESPACE" not in headers
    assert rows[0][headers.index("HOSTNAMES")] == "reviews.example"


def test_instance_table_shows_address_and_health() -> None:
    doc = {
        "kind": "Instance",
        "metadata": {"name": "reviews-1a2b"},
        "spec": {"service": "reviews", "address": "10.0.0.7", "port": 15006, "labels": {"v": "1"}},
        "status": {"health": "unhealthy"},
    }
    headers, rows = resource_table("Instance", [doc], wide=True, all_namespaces=False, now=NOW)
    row = dict(zip(headers, rows[0], strict=True))
    assert row["ADDRESS"] == "10.0.0.7:15006"
    assert row["HEALTH"] == "unhealthy"
    assert row["LABELS"] == "v=1"
    assert row["APP-PORT"] == "<none>"


def test_tables_survive_documents_of_the_wrong_shape() -> None:
    odd = {"metadata": "x", "spec": {"rules": "nope", "parentRefs": [3], "ports": [None]}}
    for kind in ("Service", "Instance", "HTTPRoute", "TrafficPolicy", "MeshConfig", "Future"):
        headers, rows = resource_table(kind, [odd], wide=True, all_namespaces=True, now=NOW)
        assert len(rows[0]) == len(headers)


def test_services_and_proxies_tables() -> None:
    _, rows = services_table(
        [{"namespace": "default", "name": "reviews", "healthy": 2, "total": 3, "declared": True}]
    )
    assert rows == [["default", "reviews", "2", "3", "yes"]]
    listing = {
        "latest": 57,
        "items": [
            {
                "id": "reviews-1a",
                "service": "reviews",
                "namespace": "default",
                "connected": True,
                "ackedVersion": 57,
                "lastSeen": "2026-01-02T11:59:58Z",
            },
            {
                "id": "ratings-2b",
                "service": "ratings",
                "namespace": "default",
                "connected": False,
                "ackedVersion": 41,
                "lastSeen": None,
            },
        ],
    }
    headers, rows = proxies_table(listing, NOW)
    assert headers == ["ID", "SERVICE", "ACKED", "LATEST", "IN-SYNC", "CONNECTED", "LAST-SEEN"]
    assert rows == [
        ["reviews-1a", "default/reviews", "57", "57", "yes", "yes", "2s ago"],
        ["ratings-2b", "default/ratings", "41", "57", "no", "no", "never"],
    ]


def test_apply_lines_are_kubectl_shaped() -> None:
    results = [
        {"kind": "HTTPRoute", "namespace": "default", "name": "reviews", "action": "created"},
        {"kind": "Service", "namespace": "default", "name": "ratings", "action": "unchanged"},
    ]
    assert apply_lines(results, dry_run=False) == [
        "httproute.gossamer.dev/reviews created",
        "service.gossamer.dev/ratings unchanged",
    ]
    assert apply_lines(results[:1], dry_run=True) == [
        "httproute.gossamer.dev/reviews created (dry run)"
    ]


def test_warnings_render_from_strings_or_objects() -> None:
    assert format_warning("plain") == "plain"
    assert format_warning({"document": "HTTPRoute default/r", "field": "spec", "message": "m"}) == (
        "HTTPRoute default/r: spec: m"
    )


def test_yaml_and_json_output_parse_back() -> None:
    assert list(yaml.safe_load_all(to_yaml([ROUTE, {"kind": "Service"}]))) == [
        ROUTE,
        {"kind": "Service"},
    ]
    assert json.loads(to_json({"items": [ROUTE]})) == {"items": [ROUTE]}


def test_table_to_a_pipe_is_not_wrapped_or_truncated() -> None:
    out = io.StringIO()
    long_backends = ",".join(f"backend-number-{i}:1" for i in range(10))
    render_table(["NAME", "BACKENDS"], [["reviews", long_backends], ["r2", "x"]], out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["NAME", "BACKENDS"]
    assert lines[1].split() == ["reviews", long_backends]


@pytest.mark.parametrize(
    ("answer", "items"),
    [
        ({"items": [{"a": 1}, 2, None]}, [{"a": 1}]),
        ({"items": 7}, []),
        ({"items": {"a": 1}}, []),
        ({}, []),
        ([], []),
    ],
)
def test_list_items_skips_what_is_not_an_object(answer: object, items: list[object]) -> None:
    from gossamer.cli.output import list_items

    assert list_items(answer) == items
