"""HTTPRoute filters as pure plans: Gateway API semantics for each filter, fault decisions,
session keys, and the field-naming errors on malformed wire input."""

from __future__ import annotations

from typing import Any

import pytest

from gossamer.proxy.filters import (
    FULL_PATH,
    PREFIX_MATCH,
    Fault,
    HeaderOps,
    PathChange,
    Redirect,
    compile_filters,
    cookie_value,
    redirect_location,
    replace_path,
    shadow_authority,
    sticky_key,
)
from gossamer.proxy.routing import compile_route


def modifier(kind: str, **ops: Any) -> dict[str, Any]:
    field = kind[0].lower() + kind[1:]
    return {"type": kind, field: {"set": [], "add": [], "remove": [], **ops}}


# --- header modifiers --------------------------------------------------------------------


def test_set_replaces_every_line_add_appends_with_comma_remove_drops():
    plan = compile_filters(
        [
            modifier(
                "RequestHeaderModifier",
                set=[{"name": "X-Set", "value": "one"}],
                add=[{"name": "X-Add", "value": "bar"}, {"name": "X-New", "value": "n"}],
                remove=["X-Gone"],
            )
        ],
        "filters",
    )
    assert plan is not None and plan.request_headers is not None
    headers = [
        (b"x-set", b"a"),
        (b"x-add", b"foo"),
        (b"x-gone", b"1"),
        (b"x-set", b"b"),
        (b"x-keep", b"k"),
        (b"x-gone", b"2"),
    ]
    out = plan.request_headers.apply(headers)
    assert out == [
        (b"x-add", b"foo,bar"),
        (b"x-keep", b"k"),
        (b"x-set", b"one"),
        (b"x-new", b"n"),
    ]
    assert headers[0] == (b"x-set", b"a")  # the input list is not edited


def test_remove_wins_over_set_and_add_of_the_same_name():
    ops = HeaderOps(set=((b"x", b"1"),), add=((b"y", b"2"),), remove=frozenset({b"x", b"y"}))
    assert ops.apply([(b"x", b"0"), (b"z", b"3")]) == [(b"z", b"3")]


def test_framing_headers_are_never_touched_by_a_filter():
    plan = compile_filters(
        [
            modifier(
                "ResponseHeaderModifier",
                set=[{"name": "Content-Length", "value": "0"}, {"name": "X-Ok", "value": "1"}],
                remove=["Transfer-Encoding", "Connection"],
            )
        ],
        "f",
    )
    assert plan is not None and plan.response_headers is not None
    head = [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")]
    assert plan.response_headers.apply(head) == [*head, (b"x-ok", b"1")]


def test_two_modifiers_of_one_kind_merge():
    plan = compile_filters(
        [
            modifier("RequestHeaderModifier", set=[{"name": "a", "value": "1"}]),
            modifier("RequestHeaderModifier", remove=["b"]),
        ],
        "f",
    )
    assert plan is not None and plan.request_headers is not None
    assert plan.request_headers.apply([(b"b", b"x")]) == [(b"a", b"1")]


@pytest.mark.parametrize("value", ["a\r\nx-evil: 1", "a\nb", "nul\0"])
def test_header_values_that_would_split_the_message_are_refused(value):
    with pytest.raises(ValueError, match=r"f\[0\]\.requestHeaderModifier\.set\[0\]\.value"):
        compile_filters(
            [modifier("RequestHeaderModifier", set=[{"name": "x", "value": value}])], "f"
        )


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "replacement", "path", "expected"),
    [
        (b"/api", b"/v2", b"/api/x", b"/v2/x"),
        (b"/api", b"/v2", b"/api", b"/v2"),
        (b"/api", b"/v2", b"/api/", b"/v2/"),
        (b"/api", b"/v2/", b"/api/x/y", b"/v2/x/y"),
        (b"/api", b"/", b"/api/x", b"/x"),
        (b"/api", b"/", b"/api", b"/"),
        (b"/prefix/one", b"/one", b"/prefix/one/two", b"/one/two"),
        (b"/", b"/v2", b"/x", b"/v2/x"),
        (b"/", b"/v2", b"/", b"/v2/"),
    ],
)
def test_replace_prefix_match(prefix, replacement, path, expected):
    assert replace_path(PathChange(PREFIX_MATCH, replacement), path, prefix) == expected


def test_replace_full_path_ignores_the_request_path():
    assert replace_path(PathChange(FULL_PATH, b"/new"), b"/old/deep", b"/old") == b"/new"


# --- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("redirect", "authority", "path", "query", "expected"),
    [
        (Redirect(), b"reviews", b"/a", None, b"http://reviews/a"),
        (Redirect(), b"reviews:9080", b"/a", b"q=1", b"http://reviews:9080/a?q=1"),
        (Redirect(scheme=b"https"), b"reviews:9080", b"/a", None, b"https://reviews/a"),
        (Redirect(scheme=b"https", port=8443), b"reviews", b"/", None, b"https://reviews:8443/"),
        (Redirect(port=80), b"reviews:9080", b"/", None, b"http://reviews/"),
        (Redirect(hostname=b"new.example"), b"reviews:81", b"/a", None, b"http://new.example:81/a"),
        (
            Redirect(path=PathChange(PREFIX_MATCH, b"/new")),
            b"www",
            b"/old/page",
            b"a=b",
            b"http://www/new/page?a=b",
        ),
        (
            Redirect(path=PathChange(FULL_PATH, b"/home")),
            b"www",
            b"/old/x",
            None,
            b"http://www/home",
        ),
    ],
)
def test_redirect_location(redirect, authority, path, query, expected):
    assert redirect_location(redirect, b"http", authority, path, query, b"/old") == expected


def test_redirect_compiles_status_and_fields():
    plan = compile_filters(
        [
            {
                "type": "RequestRedirect",
                "requestRedirect": {
                    "scheme": "https",
                    "hostname": "secure",
                    "statusCode": 301,
                    "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"},
                },
            }
        ],
        "f",
        prefix=b"/old",
    )
    assert plan is not None and plan.redirect is not None
    assert plan.redirect.status == 301
    location = redirect_location(plan.redirect, b"http", b"www:8080", b"/old/a", None, plan.prefix)
    assert location == b"https://secure/new/a"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"statusCode": 304}, "statusCode"),
        ({"scheme": "ftp"}, "scheme"),
        ({"port": 0}, "port"),
        ({"path": {"type": "Nope"}}, "path.type"),
        ({"path": {"type": "ReplaceFullPath", "replaceFullPath": "rel"}}, "path.replaceFullPath"),
    ],
)
def test_bad_redirects_name_the_field(config, field):
    with pytest.raises(ValueError, match=rf"f\[0\]\.requestRedirect\.{field}"):
        compile_filters([{"type": "RequestRedirect", "requestRedirect": config}], "f")


# --- rewrite, fault, mirror host, sticky ----------------------------------------------------


def test_url_rewrite_hostname_and_path():
    plan = compile_filters(
        [
            {
                "type": "URLRewrite",
                "urlRewrite": {
                    "hostname": "ratings.internal",
                    "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"},
                },
            }
        ],
        "f",
        prefix=b"/api",
    )
    assert plan is not None and plan.rewrite_path is not None
    assert plan.rewrite_host == b"ratings.internal"
    assert replace_path(plan.rewrite_path, b"/api/x", plan.prefix) == b"/v2/x"


def test_fault_decisions_follow_the_percentages():
    fault = Fault(delay=0.5, delay_percent=10, abort_status=503, abort_percent=5)
    assert fault.decide(0.099, 0.049) == (0.5, 503)
    assert fault.decide(0.1, 0.05) == (0.0, 0)
    assert Fault(abort_status=418, abort_percent=100).decide(0.9999, 0.9999) == (0.0, 418)
    assert Fault(abort_status=418, abort_percent=0).decide(0.0, 0.0) == (0.0, 0)


def test_fault_compiles_and_rejects_out_of_range():
    plan = compile_filters(
        [
            {
                "type": "Fault",
                "fault": {
                    "delay": {"seconds": 0.2, "percent": 50},
                    "abort": {"status": 503, "percent": 7.5},
                },
            }
        ],
        "f",
    )
    assert plan is not None and plan.fault is not None
    assert (plan.fault.delay, plan.fault.delay_percent) == (0.2, 50.0)
    assert (plan.fault.abort_status, plan.fault.abort_percent) == (503, 7.5)
    with pytest.raises(ValueError, match=r"f\[0\]\.fault\.abort\.percent: 101"):
        compile_filters(
            [{"type": "Fault", "fault": {"abort": {"status": 503, "percent": 101}}}], "f"
        )
    with pytest.raises(ValueError, match=r"f\[0\]\.fault\.abort\.status"):
        compile_filters([{"type": "Fault", "fault": {"abort": {"status": 99}}}], "f")
    with pytest.raises(ValueError, match=r"f\[0\]\.fault\.delay\.seconds"):
        compile_filters([{"type": "Fault", "fault": {"delay": {"seconds": -1}}}], "f")


def test_shadow_host_keeps_the_port():
    assert shadow_authority(b"reviews") == b"reviews-shadow"
    assert shadow_authority(b"reviews.default:9080") == b"reviews.default-shadow:9080"


def test_sticky_key_from_header_or_cookie():
    by_header = compile_filters([], "f", sticky={"header": "X-User-Id"})
    by_cookie = compile_filters([], "f", sticky={"cookie": "session"})
    assert by_header is not None and by_cookie is not None
    headers = [(b"x-user-id", b"42"), (b"cookie", b"a=1; session=s-7; b=2")]
    assert sticky_key(by_header, headers) == b"42"
    assert sticky_key(by_cookie, headers) == b"s-7"
    assert sticky_key(by_cookie, [(b"cookie", b"sessionx=1")]) is None
    assert cookie_value([(b"cookie", b"a=1"), (b"cookie", b"b=2")], b"b") == b"2"
    with pytest.raises(ValueError, match=r"r\.sessionPersistence: expected"):
        compile_filters([], "f", sticky={}, sticky_field="r.sessionPersistence")


def test_no_filters_no_plan_and_unknown_types_are_refused():
    assert compile_filters([], "f") is None
    mirror_only = [{"type": "RequestMirror", "requestMirror": {"service": "default/s"}}]
    assert compile_filters(mirror_only, "f") is None  # carried by Route.mirrors
    with pytest.raises(ValueError, match=r"f\[0\]\.type: 'Bogus'"):
        compile_filters([{"type": "Bogus"}], "f")


# --- through compile_route ------------------------------------------------------------------


def wire_route(filters: list[Any], backends: list[Any] | None = None, **extra: Any) -> Any:
    return {
        "route": "default/r",
        "rule": 0,
        "match": {"path": {"type": "PathPrefix", "value": "/api/"}},
        "backends": backends or [{"service": "default/web", "labels": {}, "weight": 1}],
        "filters": filters,
        **extra,
    }


def test_route_without_filters_has_no_plan():
    route = compile_route(wire_route([]), "r")
    assert route.plan is None and route.backend_plans == (None,)


def test_route_plan_uses_the_match_prefix_and_backend_filters_get_their_own_plan():
    rewrite = {
        "type": "URLRewrite",
        "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
    }
    backend_filter = modifier("RequestHeaderModifier", set=[{"name": "x-v", "value": "2"}])
    route = compile_route(
        wire_route(
            [rewrite],
            [{"service": "default/web", "labels": {}, "weight": 1, "filters": [backend_filter]}],
        ),
        "r",
    )
    assert route.plan is not None and route.plan.prefix == b"/api"
    assert route.backend_plans[0] is not None
    only_backend = compile_route(
        wire_route([], [{"service": "default/web", "weight": 1, "filters": [backend_filter]}]),
        "r",
    )
    assert only_backend.plan is not None and only_backend.plan.request_headers is None


def test_backend_filters_cannot_redirect_and_regex_routes_cannot_replace_a_prefix():
    redirect = {"type": "RequestRedirect", "requestRedirect": {}}
    with pytest.raises(ValueError, match=r"r\.backends\[0\]\.filters\[0\]\.type"):
        compile_route(
            wire_route([], [{"service": "default/web", "weight": 1, "filters": [redirect]}]), "r"
        )
    prefix = {
        "type": "URLRewrite",
        "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
    }
    regex = wire_route([prefix])
    regex["match"] = {"path": {"type": "RegularExpression", "value": "/a.*"}}
    with pytest.raises(ValueError, match=r"r\.filters: ReplacePrefixMatch"):
        compile_route(regex, "r")


def test_session_persistence_from_the_entry():
    route = compile_route(wire_route([], sessionPersistence={"cookie": "gsm-session"}), "r")
    assert route.plan is not None and route.plan.sticky_cookie == b"gsm-session"
