"""AuthorizationPolicy and PeerAuthentication validation: precise errors, nothing stored."""

from __future__ import annotations

import pytest

from gossamer.model import ValidationFailed
from gossamer.model.kinds import lookup_kind
from gossamer.model.parse import load_yaml, parse_documents

POLICY = """
apiVersion: gossamer.dev/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewers}
spec:
  selector: {matchLabels: {service: reviews, version: v2}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/frontend"], namespaces: ["prod*"]}
    - source: {services: [frontend, other/batch]}
    to: [{operation: {paths: ["/api/*", "*.css"], notMethods: [DELETE]}}]
    when: [{key: "request.headers[x-tenant]", values: [acme]}]
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        parse_documents(load_yaml(text, "authz.yaml"))
    return [str(e) for e in info.value.errors]


def test_policy_round_trips() -> None:
    [res] = parse_documents(load_yaml(POLICY, "authz.yaml"))
    doc = res.to_doc()
    assert doc["spec"]["rules"][0]["from"][1]["source"]["services"] == ["frontend", "other/batch"]
    [again] = parse_documents([(doc, "again", None)])
    assert again.to_doc() == doc
    assert lookup_kind("authz").kind == "AuthorizationPolicy"
    assert lookup_kind("peerauthentications").kind == "PeerAuthentication"


def test_empty_spec_is_an_allow_nothing_policy() -> None:
    text = "apiVersion: gossamer.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec: {}\n"
    [res] = parse_documents(load_yaml(text, "authz.yaml"))
    assert res.to_doc()["spec"] == {"action": "ALLOW", "rules": []}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("action: ALLOW", "action: AUDIT", "spec.action: Input should be 'ALLOW' or 'DENY'"),
        ('"/api/*"', '"/a*b"', "spec.rules[0].to[0].operation.paths: '/a*b': '*' may"),
        ('"/api/*"', '"api"', "path 'api' must start with '/'"),
        ("notMethods: [DELETE]", 'notMethods: ["GE T"]', "'GE T' is not an HTTP method token"),
        ("request.headers[x-tenant]", "request.body", "unknown condition key 'request.body'"),
        ("values: [acme]", "values: []", "a condition needs 'values' or 'notValues'"),
        (
            "service: reviews,",
            "service: Reviews_1,",
            "spec.selector.matchLabels: label 'service' names a service: must be a DNS",
        ),
        ("other/batch", "other/batch/x", "spec.rules[0].from[1].source.services"),
        ("namespaces:", "namespacez:", "spec.rules[0].from[0].source.namespacez: Extra inputs"),
        ('"prod*"', '"*prod*"', "'*' may only be the first or the last"),
    ],
)
def test_errors_name_the_field(old: str, new: str, expected: str) -> None:
    assert old in POLICY
    errors = errors_of(POLICY.replace(old, new))
    assert any(expected in e for e in errors), errors


PEER = """
apiVersion: gossamer.dev/v1
kind: PeerAuthentication
metadata: {name: default, namespace: gossamer-system}
spec:
  mtls: {mode: PERMISSIVE}
"""


def test_peer_authentication() -> None:
    [res] = parse_documents(load_yaml(PEER, "pa.yaml"))
    assert res.to_doc()["spec"] == {"mtls": {"mode": "PERMISSIVE"}}
    bad_mode = errors_of(PEER.replace("PERMISSIVE", "DISABLE"))
    assert "spec.mtls.mode: Input should be 'STRICT' or 'PERMISSIVE'" in bad_mode[0]
    by_labels = PEER.replace("spec:", "spec:\n  selector: {matchLabels: {version: v1}}")
    assert "must hold exactly the key 'service'" in errors_of(by_labels)[0]
    per_service = PEER.replace("spec:", "spec:\n  selector: {matchLabels: {service: reviews}}")
    [res] = parse_documents(load_yaml(per_service, "pa.yaml"))
    assert res.to_doc()["spec"]["selector"] == {"matchLabels": {"service": "reviews"}}
