"""Issue 6's bad input, refused at apply time with the field named: regular expressions
that are invalid or too costly, weights that do not parse / are negative / sum to zero,
canary thresholds out of range, and `gossamer split` terms."""

from __future__ import annotations

import pytest
import typer

from gossamer.cli.traffic import parse_weights
from gossamer.model import ValidationFailed
from gossamer.model.parse import load_yaml, parse_documents
from gossamer.model.regex import MAX_REGEX_LENGTH, MAX_REGEX_PROGRAM_SIZE

ROUTE = """
apiVersion: gossamer.dev/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{name: reviews}]
  rules:
"""
CANARY = """
apiVersion: gossamer.dev/v1
kind: Canary
metadata: {name: reviews}
spec:
  service: reviews
  canary: {version: v2}
"""


def errors_of(text: str) -> str:
    with pytest.raises(ValidationFailed) as info:
        parse_documents(load_yaml(text, "mesh.yaml"))
    return "\n".join(str(e) for e in info.value.errors)


def parses(text: str) -> None:
    parse_documents(load_yaml(text, "mesh.yaml"))


@pytest.mark.parametrize(
    ("match", "field"),
    [
        ("{path: {type: RegularExpression, value: '/api/(v1'}}", "matches[0].path"),
        ("{headers: [{type: RegularExpression, name: x-user, value: '[a-'}]}", "headers[0]"),
        ("{queryParams: [{type: RegularExpression, name: q, value: 'a**'}]}", "queryParams[0]"),
        # Perl backreferences are not RE2: refused here, not in every sidecar.
        (r"{path: {type: RegularExpression, value: '/(a)\1'}}", "matches[0].path"),
    ],
)
def test_invalid_regex_is_refused_naming_the_field(match: str, field: str) -> None:
    message = errors_of(ROUTE + f"  - matches: [{match}]\n")
    assert f"spec.rules[0].matches[0].{field.removeprefix('matches[0].')}" in message
    assert "value: invalid regular expression" in message


def test_costly_regex_is_refused_with_the_cap() -> None:
    # Nested counted repetition: short to write, a large automaton once expanded.
    message = errors_of(
        ROUTE + "  - matches: [{path: {type: RegularExpression, value: '/(ab|cd){600}'}}]\n"
    )
    assert "spec.rules[0].matches[0].path" in message
    assert f"the cap is {MAX_REGEX_PROGRAM_SIZE}" in message
    assert "RE2 program of size" in message


def test_overlong_regex_is_refused_with_the_cap() -> None:
    pattern = "/" + "a" * MAX_REGEX_LENGTH
    message = errors_of(
        ROUTE
        + f"  - matches: [{{headers: [{{type: RegularExpression, name: x, value: '{pattern}'}}]}}]\n"
    )
    assert "headers[0]" in message
    assert f"the cap is {MAX_REGEX_LENGTH}" in message


def test_reasonable_regexes_parse_and_exact_values_are_not_regexes() -> None:
    parses(
        ROUTE
        + """  - matches:
    - path: {type: RegularExpression, value: '/api/v[0-9]+/users/[^/]+'}
      headers: [{type: RegularExpression, name: x-user, value: '[0-9]{1,12}'}]
      queryParams: [{type: RegularExpression, name: q, value: '(beta|alpha)-.*'}]
    - headers: [{name: x-raw, value: '(not a regex'}]
"""
    )


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ("[{name: a, weight: -1}]", "backendRefs[0].weight"),
        ("[{name: a, weight: ten}]", "backendRefs[0].weight"),
        ("[{name: a, weight: 0}, {name: b, weight: 0}]", "weights are all zero"),
        ("[{name: a, weight: 2000000}]", "backendRefs[0].weight"),
    ],
)
def test_bad_weights_are_refused(weights: str, expected: str) -> None:
    assert expected in errors_of(ROUTE + f"  - backendRefs: {weights}\n")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("thresholds: {maxErrorRate: 150}", "spec.thresholds.maxErrorRate"),
        ("thresholds: {maxErrorRate: -1}", "spec.thresholds.maxErrorRate"),
        ("thresholds: {minRequests: 0}", "spec.thresholds.minRequests"),
        ("thresholds: {maxP99: fast}", "spec.thresholds.maxP99"),
        ("steps: [5, 250]", "spec.steps"),
        ("steps: [50, 25]", "spec.steps"),
        ("interval: 1ms", "spec.interval"),
    ],
)
def test_canary_thresholds_out_of_range_are_refused(spec: str, field: str) -> None:
    assert field in errors_of(CANARY + f"  {spec}\n")


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        (["v1=ninety"], "'v1=ninety' is not SUBSET=WEIGHT"),
        (["v1=-5"], "'v1=-5' is not SUBSET=WEIGHT"),
        (["v1=0", "v2=0"], "weights sum to zero"),
        (["=5"], "is not SUBSET=WEIGHT"),
    ],
)
def test_split_refuses_bad_weights(terms: list[str], expected: str) -> None:
    with pytest.raises(typer.BadParameter) as info:
        parse_weights(terms)
    assert expected in str(info.value)


def test_split_accepts_blue_green() -> None:
    assert parse_weights(["v2=100"]) == {"v2": 100}
    assert parse_weights(["v1=90", "v2=10"]) == {"v1": 90, "v2": 10}
