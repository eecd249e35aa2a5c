"""Route matching (Gateway API HTTPRoute semantics) and sticky weighted backend choice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossamer.proxy.routing import REGEX_ENGINE, choose_backend, match_route, point_for_key
from gossamer.proxy.snapshot import ServiceView, Snapshot


def route(
    path: dict[str, str] | None = None,
    headers: list[dict[str, str]] | None = None,
    query: list[dict[str, str]] | None = None,
    method: str | None = None,
    backends: list[dict[str, Any]] | None = None,
    name: str = "default/web",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "route": name,
        "rule": 0,
        "match": {
            "path": path or {"type": "PathPrefix", "value": "/"},
            "headers": headers or [],
            "queryParams": query or [],
            "method": method,
        },
        "backends": backends or [{"service": "default/web", "labels": {}, "weight": 1}],
        "filters": [],
        "timeouts": {"request": None, "backendRequest": None},
        "retry": None,
        **extra,
    }


def view_with(*routes: dict[str, Any]) -> ServiceView:
    entry = {
        "name": "web",
        "namespace": "default",
        "endpoints": [
            {"id": f"web-{v}", "address": "127.0.0.1", "port": 9000 + i, "labels": {"version": v}}
            for i, v in enumerate(["v1", "v2", "v3"])
        ],
        "routes": list(routes),
    }
    snap = Snapshot.from_wire(
        {"type": "snapshot", "version": 1, "services": {"default/web": entry}}
    )
    view = snap.lookup("web")
    assert view is not None
    return view


def matches(view: ServiceView, path: str = "/", **kw: Any) -> int | None:
    """Index of the matching route (by its 'rule' number), or None."""
    found = match_route(view, kw.get("method", "GET"), path, kw.get("query"), kw.get("headers", []))
    return None if found is None else found.rule


def numbered(*routes: dict[str, Any]) -> ServiceView:
    for i, r in enumerate(routes):
        r["rule"] = i
    return view_with(*routes)


# --- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api", True),
        ("/api/", True),
        ("/api/x", True),
        ("/apix", False),
        ("/ap", False),
        ("/", False),
    ],
)
def test_path_prefix_is_segment_wise(path: str, expected: bool) -> None:
    view = view_with(route({"type": "PathPrefix", "value": "/api"}))
    assert (matches(view, path) is not None) is expected


def test_path_prefix_trailing_slash_is_ignored_and_root_matches_all() -> None:
    view = view_with(route({"type": "PathPrefix", "value": "/api/"}))
    assert matches(view, "/api") == 0 and matches(view, "/api/v1") == 0
    assert matches(view, "/apiv1") is None
    root = view_with(route({"type": "PathPrefix", "value": "/"}))
    assert matches(root, "/") == 0 and matches(root, "/anything/at/all") == 0


def test_path_exact() -> None:
    view = view_with(route({"type": "Exact", "value": "/login"}))
    assert matches(view, "/login") == 0
    assert matches(view, "/login/") is None and matches(view, "/login/x") is None


def test_path_regex_is_a_full_match() -> None:
    view = view_with(route({"type": "RegularExpression", "value": r"/users/[0-9]+"}))
    assert matches(view, "/users/42") == 0
    assert matches(view, "/users/42/edit") is None
    assert matches(view, "/x/users/42") is None


def test_regex_engine_is_re2() -> None:
    assert REGEX_ENGINE == "re2"
    # Catastrophic backtracking in `re`; linear in RE2.
    view = view_with(route({"type": "RegularExpression", "value": r"/(a+)+b"}))
    assert matches(view, "/" + "a" * 5000 + "c") is None


# --- headers, query, method -----------------------------------------------------------------


def test_header_exact_and_regex_case_insensitive_names() -> None:
    view = numbered(
        route(headers=[{"type": "Exact", "name": "X-User", "value": "42"}]),
        route(headers=[{"type": "RegularExpression", "name": "x-env", "value": "stag(e|ing)"}]),
    )
    assert matches(view, headers=[(b"x-user", b"42")]) == 0
    assert matches(view, headers=[(b"x-user", b"420")]) is None
    assert matches(view, headers=[(b"x-env", b"staging")]) == 1
    assert matches(view, headers=[(b"x-env", b"staging-2")]) is None
    assert matches(view, headers=[]) is None


def test_all_header_matches_must_hold() -> None:
    view = view_with(
        route(
            headers=[
                {"type": "Exact", "name": "a", "value": "1"},
                {"type": "Exact", "name": "b", "value": "2"},
            ]
        )
    )
    assert matches(view, headers=[(b"a", b"1"), (b"b", b"2")]) == 0
    assert matches(view, headers=[(b"a", b"1")]) is None


def test_repeated_headers_are_joined() -> None:
    view = view_with(route(headers=[{"type": "Exact", "name": "x-tag", "value": "a, b"}]))
    assert matches(view, headers=[(b"x-tag", b"a"), (b"x-tag", b"b")]) == 0


def test_query_params_exact_name_and_first_value() -> None:
    view = numbered(
        route(query=[{"type": "Exact", "name": "debug", "value": "1"}]),
        route(query=[{"type": "RegularExpression", "name": "v", "value": "[0-9]+"}]),
    )
    assert matches(view, query="debug=1") == 0
    assert matches(view, query="x=y&debug=1") == 0
    assert matches(view, query="debug=2&debug=1") is None  # first value counts
    assert matches(view, query="Debug=1") is None  # names are case-sensitive
    assert matches(view, query="v=12") == 1
    assert matches(view, query="v=1a") is None
    assert matches(view, query="name=a%20b&debug=%31") == 0  # percent-decoded
    assert matches(view, query=None) is None


def test_method_match() -> None:
    view = view_with(route(method="POST"))
    assert matches(view, method="POST") == 0
    assert matches(view, method=b"POST") == 0
    assert matches(view, method="GET") is None


def test_bytes_inputs_are_accepted() -> None:
    view = view_with(route({"type": "Exact", "value": "/a"}, query=[{"name": "q", "value": "1"}]))
    assert match_route(view, b"GET", b"/a", b"q=1", []) is not None


def test_first_match_wins_in_given_order() -> None:
    view = numbered(
        route({"type": "Exact", "value": "/api/login"}),
        route({"type": "PathPrefix", "value": "/api"}, method="POST"),
        route({"type": "PathPrefix", "value": "/api"}),
        route({"type": "PathPrefix", "value": "/"}),
    )
    assert matches(view, "/api/login", method="POST") == 0
    assert matches(view, "/api/users", method="POST") == 1
    assert matches(view, "/api/users") == 2
    assert matches(view, "/other") == 3


def test_no_routes_means_no_match_and_default_backend() -> None:
    view = view_with()
    assert view.routes == () and match_route(view, "GET", "/", None, []) is None
    assert len(view.default_backend.endpoints) == 3


# --- route attributes -----------------------------------------------------------------------


def test_route_carries_timeouts_retry_and_backends() -> None:
    view = view_with(
        route(
            backends=[{"service": "default/web", "labels": {"version": "v2"}, "weight": 3}],
            timeouts={"request": 10.0, "backendRequest": 2.5},
            retry={"attempts": 2, "backoff": 0.05, "codes": [502, 503]},
        )
    )
    found = match_route(view, "GET", "/", None, [])
    assert found is not None
    assert found.request_timeout == 10.0 and found.backend_request_timeout == 2.5
    assert found.retry is not None and found.retry.attempts == 2
    assert found.retry.backoff == 0.05 and found.retry.codes == {502, 503}
    ref = choose_backend(found, 0.7)
    assert ref is not None and ref.backend is not None
    assert [ep.id for ep in ref.backend.endpoints] == ["web-v2"]


def test_route_without_backends_chooses_none() -> None:
    redirect = route(filters=[{"type": "RequestRedirect", "requestRedirect": {"statusCode": 301}}])
    redirect["backends"] = []
    view = view_with(redirect)
    found = match_route(view, "GET", "/", None, [])
    assert found is not None and choose_backend(found, 0.5) is None
    assert found.filters[0]["type"] == "RequestRedirect"


# --- weighted choice ------------------------------------------------------------------------


def weighted(weights: list[int]) -> ServiceView:
    versions = ["v1", "v2", "v3"]
    return view_with(
        route(
            backends=[
                {"service": "default/web", "labels": {"version": versions[i]}, "weight": w}
                for i, w in enumerate(weights)
            ]
        )
    )


def version_for(view: ServiceView, point: float) -> str:
    ref = choose_backend(view.routes[0], point)
    assert ref is not None
    return ref.labels["version"]


@pytest.mark.parametrize("weights", [[90, 10], [1, 1], [50, 30, 20], [1, 0, 3]])
def test_weights_split_traffic_proportionally(weights: list[int]) -> None:
    view = weighted(weights)
    n = 20000
    counts = Counter(version_for(view, (i + 0.5) / n) for i in range(n))
    total = sum(weights)
    for i, w in enumerate(weights):
        share = counts.get(["v1", "v2", "v3"][i], 0) / n
        assert share == pytest.approx(w / total, abs=0.02)


def test_zero_weight_backend_is_never_chosen() -> None:
    view = weighted([5, 0])
    assert {version_for(view, i / 1000) for i in range(1000)} == {"v1"}


def test_point_for_key_is_stable_and_in_range() -> None:
    assert point_for_key(b"user-1") == point_for_key(b"user-1")
    points = [point_for_key(str(i).encode()) for i in range(1000)]
    assert all(0 <= p < 1 for p in points)
    assert 0.4 < sum(points) / len(points) < 0.6


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 100), min_size=2, max_size=3),
    st.data(),
    st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=30),
)
def test_widening_a_backend_only_moves_points_to_it(
    weights: list[int], data: st.DataObject, points: list[float]
) -> None:
    widened = data.draw(st.integers(0, len(weights) - 1))
    extra = data.draw(st.integers(1, 200))
    before = weighted(weights)
    wider = list(weights)
    wider[widened] += extra
    after = weighted(wider)
    target = ["v1", "v2", "v3"][widened]
    for point in points:
        old, new = version_for(before, point), version_for(after, point)
        assert new == old or new == target


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 99), st.integers(1, 99), st.binary(max_size=12))
def test_canary_rollout_with_fixed_total(canary_from: int, canary_to: int, key: bytes) -> None:
    """90/10 -> 80/20 style rollouts: a sticky key only ever moves toward the growing side."""
    point = point_for_key(key)
    before = version_for(weighted([100 - canary_from, canary_from]), point)
    after = version_for(weighted([100 - canary_to, canary_to]), point)
    if canary_to >= canary_from:
        assert before == after or after == "v2"
    else:
        assert before == after or after == "v1"


PATTERNS = [
    r"/users/[0-9]+",
    r"/api/v[12]/.*",
    r"(?i)/API/v[12]",
    r".*\.(png|jpe?g)",
    r"/a|/b",
    r"",
    r"x*",
    r"[^/]+/x",
    r"/é+/[a-z]{2,3}",
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(PATTERNS),
    st.text(alphabet="/apiAPIvV12usersx.pngjé0-9", max_size=14) | st.binary(max_size=10),
)
def test_full_matcher_agrees_with_the_public_re2_api(pattern: str, text: str | bytes) -> None:
    import re2

    from gossamer.proxy.routing import FullMatcher

    data = text if isinstance(text, bytes) else text.encode("utf-8")
    expected = re2.compile(pattern.encode()).fullmatch(data) is not None
    assert FullMatcher(pattern, "f").fullmatch(data) is expected


segment = st.text(alphabet="ab", min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(segment, max_size=3), st.lists(segment, max_size=4), st.booleans())
def test_path_prefix_matches_whole_segments(
    prefix_parts: list[str], path_parts: list[str], trailing: bool
) -> None:
    prefix = "/" + "/".join(prefix_parts)
    path = "/" + "/".join(path_parts) + ("/" if trailing and path_parts else "")
    view = view_with(route({"type": "PathPrefix", "value": prefix}))
    expected = path_parts[: len(prefix_parts)] == prefix_parts
    assert (matches(view, path) is not None) is expected
