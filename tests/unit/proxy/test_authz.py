"""Istio's AuthorizationPolicy semantics, on the sidecar's wire form."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossamer.proxy.authz import (
    ALLOWED_BY_RULE,
    ALLOWED_NO_ALLOW_POLICY,
    ALLOWED_NO_POLICY,
    DENIED_BY_RULE,
    DENIED_NO_MATCH,
    DENIED_UNEVALUABLE,
    Decision,
    evaluate,
    match,
    parse_policies,
)

FRONTEND = "spiffe://cluster.local/ns/default/sa/frontend"
BATCH = "spiffe://cluster.local/ns/jobs/sa/batch"


def policy(name: str, action: str = "ALLOW", rules: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f"default/{name}", "action": action, **extra}
    if rules is not None:
        out["rules"] = rules
    return out


def decide(
    wire: list[dict[str, Any]],
    principal: str | None = FRONTEND,
    method: str = "GET",
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | None = None,
    labels: dict[str, str] | None = None,
) -> Decision:
    policies = parse_policies(wire, "authz")
    return evaluate(policies, labels or {}, principal, method, path, headers or [])


def test_no_policy_allows() -> None:
    d = decide([])
    assert d.allowed and d.code == ALLOWED_NO_POLICY and d.policy == ""


def test_allow_without_rules_allows_nothing() -> None:
    d = decide([policy("nothing")])
    assert not d.allowed and d.code == DENIED_NO_MATCH and "default/nothing" in d.reason


def test_allow_with_an_empty_rule_allows_everything() -> None:
    d = decide([policy("all", rules=[{}])], principal=None)
    assert d.allowed and d.code == ALLOWED_BY_RULE and (d.policy, d.rule) == ("default/all", 0)


def test_any_allow_policy_makes_the_default_deny() -> None:
    wire = [policy("get-only", rules=[{"to": [{"methods": ["GET"]}]}])]
    assert decide(wire).allowed
    assert decide(wire, method="POST").code == DENIED_NO_MATCH


def test_deny_wins_over_allow() -> None:
    wire = [
        policy("all", rules=[{}]),
        policy("no-admin", "DENY", rules=[{"to": [{"paths": ["/admin", "/admin/*"]}]}]),
    ]
    d = decide(wire, path="/admin/x")
    assert not d.allowed and d.code == DENIED_BY_RULE and d.policy == "default/no-admin"
    assert decide(wire, path="/administrator").allowed


def test_deny_without_rules_denies_nothing() -> None:
    d = decide([policy("empty-deny", "DENY")])
    assert d.allowed and d.code == ALLOWED_NO_ALLOW_POLICY


def test_deny_rule_the_sidecar_cannot_evaluate_fails_closed() -> None:
    rule = {"when": [{"key": "source.ip", "values": ["10.0.0.1"]}]}
    d = decide([policy("by-ip", "DENY", rules=[rule])], path="/anything")
    assert not d.allowed and d.code == DENIED_UNEVALUABLE and "source.ip" in d.reason
    # The same rule in an ALLOW policy never matches.
    assert decide([policy("by-ip", rules=[rule])]).code == DENIED_NO_MATCH


def test_unknown_fields_from_a_newer_control_plane_fail_closed() -> None:
    rule = {"to": [{"paths": ["/x"], "ports": ["8080"]}]}
    d = decide([policy("newer", "DENY", rules=[rule])], path="/y")
    assert d.code == DENIED_UNEVALUABLE and "ports" in d.reason


def test_principals_with_wildcards_and_scheme() -> None:
    for pattern in (
        FRONTEND,
        "cluster.local/ns/default/sa/frontend",
        "cluster.local/ns/default/*",
        "*/sa/frontend",
        "*",
    ):
        wire = [policy("p", rules=[{"from": [{"principals": [pattern]}]}])]
        assert decide(wire).allowed, pattern
        assert not decide(wire, principal=None).allowed, pattern  # plaintext: no principal
    wire = [policy("p", rules=[{"from": [{"principals": ["cluster.local/ns/default/*"]}]}])]
    assert not decide(wire, principal=BATCH).allowed


def test_not_principals_star_denies_plaintext() -> None:
    wire = [policy("need-mtls", "DENY", rules=[{"from": [{"notPrincipals": ["*"]}]}])]
    assert not decide(wire, principal=None).allowed
    assert not decide(wire, principal="").allowed
    assert decide(wire, principal=FRONTEND).allowed


def test_namespace_and_service_shorthands() -> None:
    by_ns = [policy("ns", rules=[{"from": [{"namespaces": ["jobs"]}]}])]
    assert decide(by_ns, principal=BATCH).allowed
    assert not decide(by_ns, principal=FRONTEND).allowed
    not_ns = [policy("ns", "DENY", rules=[{"from": [{"notNamespaces": ["default"]}]}])]
    assert decide(not_ns, principal=FRONTEND).allowed
    assert not decide(not_ns, principal=BATCH).allowed
    by_service = [policy("svc", rules=[{"from": [{"services": ["default/frontend"]}]}])]
    assert decide(by_service).allowed
    assert not decide(by_service, principal=BATCH).allowed
    # A principal that is not a workload's has no namespace or service.
    odd = "spiffe://cluster.local/other/default/sa/frontend"
    assert not decide(by_service, principal=odd).allowed


def test_fields_within_a_source_are_anded_and_sources_ored() -> None:
    both = {"namespaces": ["default"], "principals": ["*/sa/batch"]}
    wire = [policy("p", rules=[{"from": [both]}])]
    assert not decide(wire).allowed and not decide(wire, principal=BATCH).allowed
    either = [
        policy("p", rules=[{"from": [{"namespaces": ["default"]}, {"namespaces": ["jobs"]}]}])
    ]
    assert decide(either).allowed and decide(either, principal=BATCH).allowed


def test_operations_paths_methods_and_negations() -> None:
    op = {"paths": ["/api/*", "*.css"], "notPaths": ["/api/private*"], "notMethods": ["DELETE"]}
    wire = [policy("p", rules=[{"to": [op]}])]
    assert decide(wire, path="/api/x").allowed
    assert decide(wire, path="/static/site.css").allowed
    assert not decide(wire, path="/api/private/1").allowed
    assert not decide(wire, path="/api/x", method="DELETE").allowed
    assert not decide(wire, path="/API/x").allowed  # case-sensitive


def test_when_header_conditions() -> None:
    cond = {"key": "request.headers[X-Tenant]", "values": ["acme-*"], "notValues": ["acme-bad"]}
    wire = [policy("p", rules=[{"when": [cond]}])]
    assert decide(wire, headers=[(b"x-tenant", b"acme-1")]).allowed
    assert not decide(wire, headers=[(b"x-tenant", b"acme-bad")]).allowed
    assert not decide(wire, headers=[(b"x-tenant", b"other")]).allowed
    assert not decide(wire).allowed  # absent header: values cannot match
    deny_absent = [
        policy(
            "d",
            "DENY",
            rules=[{"when": [{"key": "request.headers[x-key]", "notValues": ["s3cret"]}]}],
        )
    ]
    assert not decide(deny_absent).allowed  # absent: not one of notValues -> denied
    assert decide(deny_absent, headers=[(b"x-key", b"s3cret")]).allowed


def test_when_source_conditions() -> None:
    wire = [policy("p", rules=[{"when": [{"key": "source.namespace", "values": ["jobs"]}]}])]
    assert decide(wire, principal=BATCH).allowed and not decide(wire).allowed
    by_principal = [{"key": "source.principal", "values": [FRONTEND]}]
    assert decide([policy("p", rules=[{"when": by_principal}])]).allowed


def test_selector_labels_pick_instances() -> None:
    wire = [policy("v2-only", "DENY", rules=[{}], selector={"version": "v2"})]
    assert not decide(wire, labels={"version": "v2", "zone": "a"}).allowed
    assert decide(wire, labels={"version": "v1"}).code == ALLOWED_NO_POLICY


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", False),
        ("*", "x", True),
        ("ab*", "abc", True),
        ("*bc", "abc", True),
        ("abc", "abcd", False),
        ("ab*", "a", False),
    ],
)
def test_match(pattern: str, value: str, expected: bool) -> None:
    assert match(pattern, value) is expected


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ({"name": "x"}, "expected a list"),
        ([{"name": "default/x", "action": "AUDIT"}], "authz[0].action"),
        ([{"action": "ALLOW"}], "authz[0].name"),
        (
            [{"name": "x", "action": "ALLOW", "rules": [{"to": [{"paths": [3]}]}]}],
            "rules[0].to[0].paths",
        ),
        (
            [{"name": "x", "action": "ALLOW", "rules": [{"when": [{"values": ["a"]}]}]}],
            "when[0].key",
        ),
    ],
)
def test_malformed_wire_names_the_field(wire: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policies(wire, "authz")


# --- properties ---------------------------------------------------------------------------------

PATTERNS = st.sampled_from(["/admin", "/admin/*", "/api*", "*.css", "*", "/x"])
METHODS = st.sampled_from(["GET", "POST", "DELETE", "*"])
PRINCIPALS = st.sampled_from(["*", "cluster.local/ns/default/*", "*/sa/batch", FRONTEND])
OPERATIONS = st.fixed_dictionaries(
    {},
    optional={
        "paths": st.lists(PATTERNS, min_size=1, max_size=2),
        "notPaths": st.lists(PATTERNS, min_size=1, max_size=2),
        "methods": st.lists(METHODS, min_size=1, max_size=2),
    },
)
SOURCES = st.fixed_dictionaries(
    {}, optional={"principals": st.lists(PRINCIPALS, min_size=1, max_size=2)}
)
RULES = st.fixed_dictionaries(
    {},
    optional={
        "from": st.lists(SOURCES, min_size=1, max_size=2),
        "to": st.lists(OPERATIONS, min_size=1, max_size=2),
    },
)
POLICIES = st.lists(
    st.builds(
        lambda i, action, rules: {"name": f"default/p{i}", "action": action, "rules": rules},
        st.integers(0, 99),
        st.sampled_from(["ALLOW", "DENY"]),
        st.lists(RULES, max_size=3),
    ),
    max_size=4,
)
REQUESTS = st.tuples(
    st.sampled_from([None, FRONTEND, BATCH]),
    st.sampled_from(["GET", "POST", "DELETE"]),
    st.sampled_from(["/", "/admin", "/admin/x", "/api/v1", "/site.css", "/x"]),
)


@settings(max_examples=400, deadline=None)
@given(POLICIES, REQUESTS)
def test_deny_wins_and_order_does_not_matter(wire: list[dict[str, Any]], req: Any) -> None:
    principal, method, path = req
    decision = decide(wire, principal, method, path)
    assert decide(list(reversed(wire)), principal, method, path).allowed == decision.allowed
    # Adding a DENY that matches everything always denies; adding an ALLOW that matches
    # everything allows whatever no DENY refused.
    assert not decide([*wire, policy("all", "DENY", rules=[{}])], principal, method, path).allowed
    with_allow = decide([*wire, policy("any", rules=[{}])], principal, method, path)
    assert with_allow.allowed == (decision.allowed or decision.code == DENIED_NO_MATCH)
    if not wire:
        assert decision.allowed
