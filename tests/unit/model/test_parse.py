import pytest

from gossamer.model import ValidationFailed
from gossamer.model.parse import load_yaml, parse_documents

ROUTE = """
apiVersion: gossamer.dev/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{name: reviews}]
  rules:
  - backendRefs:
    - {name: reviews, labels: {version: v1}, weight: 90}
    - {name: reviews, labels: {version: v2}, weight: 10}
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        parse_documents(load_yaml(text, "mesh.yaml"))
    return [str(e) for e in info.value.errors]


def test_valid_route_round_trips_with_defaults() -> None:
    [res] = parse_documents(load_yaml(ROUTE, "mesh.yaml"))
    doc = res.to_doc()
    assert doc["metadata"]["namespace"] == "default"
    assert doc["spec"]["rules"][0]["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/"}, "headers": [], "queryParams": []}
    ]
    [again] = parse_documents([(doc, "again", None)])
    assert again.to_doc() == doc


def test_every_error_names_document_field_value_and_line() -> None:
    text = ROUTE.replace("weight: 90", "weight: -1").replace("weight: 10}", "weight: 10, bogus: 1}")
    errs = errors_of(text)
    assert errs == [
        "HTTPRoute default/reviews (line 9): spec.rules[0].backendRefs[0].weight: "
        "Input should be greater than or equal to 0: got -1",
        "HTTPRoute default/reviews (line 10): spec.rules[0].backendRefs[1].bogus: "
        "Extra inputs are not permitted: got 1",
    ]


def test_all_zero_weights_refused() -> None:
    errs = errors_of(ROUTE.replace("weight: 90", "weight: 0").replace("weight: 10", "weight: 0"))
    assert len(errs) == 1 and "all zero" in errs[0] and "spec.rules[0]" in errs[0]


@pytest.mark.parametrize("name", ["Reviews", "a_b", "-x", "x" * 64, ""])
def test_names_must_be_dns_labels(name: str) -> None:
    errs = errors_of(f"apiVersion: gossamer.dev/v1\nkind: Service\nmetadata: {{name: '{name}'}}\n")
    assert any("metadata.name" in e and "DNS label" in e for e in errs)


def test_unknown_kind_and_api_version() -> None:
    errs = errors_of("apiVersion: v9\nkind: Gizmo\nmetadata: {name: a}\n")
    assert any("apiVersion" in e and "line 1" in e for e in errs)
    assert any("kind" in e and "Gizmo" in e for e in errs)


def test_duplicates_in_one_apply_refused() -> None:
    doc = "apiVersion: gossamer.dev/v1\nkind: Service\nmetadata: {name: a}\n"
    errs = errors_of(doc + "---\n" + doc)
    assert len(errs) == 1 and "duplicate" in errs[0]


def test_yaml_syntax_error_has_file_and_line() -> None:
    errs = errors_of("apiVersion: gossamer.dev/v1\nkind: [Service\nmetadata: {}\n")
    assert len(errs) == 1 and errs[0].startswith("mesh.yaml (line") and "invalid YAML" in errs[0]


def test_bad_duration_and_regex_path() -> None:
    text = ROUTE + "    timeouts: {request: 10 seconds}\n"
    errs = errors_of(text)
    assert any("timeouts.request" in e and "duration" in e for e in errs)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30ms", 0.03), ("10s", 10.0), ("1m30s", 90.0), ("1h", 3600.0), ("1m500ms", 60.5)],
)
def test_duration_seconds(text: str, seconds: float) -> None:
    from gossamer.model.common import check_duration, duration_seconds

    assert duration_seconds(check_duration(text)) == pytest.approx(seconds)
