"""HTTPRoute filter validation at apply time: what the sidecar could not apply safely is
refused here, with the field named (the sidecar would otherwise reject a whole snapshot)."""

from __future__ import annotations

import pytest

from gossamer.model import ValidationFailed
from gossamer.model.parse import load_yaml, parse_documents

HEAD = """
apiVersion: gossamer.dev/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{name: reviews}]
  rules:
"""


def errors_of(rules: str) -> str:
    with pytest.raises(ValidationFailed) as info:
        parse_documents(load_yaml(HEAD + rules, "mesh.yaml"))
    return "\n".join(str(e) for e in info.value.errors)


def parses(rules: str) -> None:
    parse_documents(load_yaml(HEAD + rules, "mesh.yaml"))


def test_fault_and_rewrite_and_backend_filters_parse() -> None:
    parses("""
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - {type: Fault, fault: {delay: {fixedDelay: 2s, percent: 10}, abort: {httpStatus: 503, percent: 5}}}
    - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}
    backendRefs:
    - name: reviews
      filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x, value: y}]}}]
""")


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("  - filters: [{type: Fault, fault: {}}]\n", "needs 'delay', 'abort' or both"),
        (
            "  - filters: [{type: Fault, fault: {abort: {httpStatus: 99}}}]\n",
            "httpStatus",
        ),
        (
            "  - filters: [{type: Fault, fault: {delay: {fixedDelay: 2s, percent: 101}}}]\n",
            "percent",
        ),
        (
            "  - filters: [{type: RequestHeaderModifier, requestHeaderModifier:"
            ' {set: [{name: x, value: "a\\r\\nb"}]}}]\n',
            "value",
        ),
        (
            "  - filters: [{type: RequestHeaderModifier, requestHeaderModifier:"
            " {remove: [Content-Length]}}]\n",
            "frames the message",
        ),
        (
            "  - filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath}}}]\n",
            "needs its 'replaceFullPath' field",
        ),
        (
            "  - matches: [{path: {type: Exact, value: /a}}]\n"
            "    filters: [{type: URLRewrite, urlRewrite:"
            " {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]\n",
            "ReplacePrefixMatch needs every match to be a PathPrefix",
        ),
        (
            "  - filters: [{type: RequestRedirect, requestRedirect: {}},"
            " {type: URLRewrite, urlRewrite: {hostname: x}}]\n",
            "cannot be combined",
        ),
        (
            "  - filters: [{type: Fault, fault: {abort: {httpStatus: 503}}},"
            " {type: Fault, fault: {abort: {httpStatus: 500}}}]\n",
            "more than once",
        ),
        (
            "  - backendRefs: [{name: reviews, filters: [{type: RequestRedirect,"
            " requestRedirect: {}}]}]\n",
            "not allowed on a backendRef",
        ),
    ],
)
def test_unsafe_filters_are_refused(rules: str, expected: str) -> None:
    assert expected in errors_of(rules)
