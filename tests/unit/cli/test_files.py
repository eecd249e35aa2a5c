import io
from pathlib import Path

import pytest

from gossamer.cli.files import documents_from_text, locate_errors, read_documents
from gossamer.model import ValidationFailed

ROUTE = """\
apiVersion: gossamer.dev/v1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs: [{name: reviews}]
  rules:
  - backendRefs:
    - name: reviews
      weight: -1
"""
SERVICE = "apiVersion: gossamer.dev/v1\nkind: Service\nmetadata: {name: ratings}\n"


def test_multi_document_yaml_keeps_order_and_skips_empty_documents() -> None:
    docs = documents_from_text(f"---\n{SERVICE}---\n---\n{ROUTE}", "mesh.yaml")
    assert [d.raw["kind"] for d in docs] == ["Service", "HTTPRoute"]
    assert [d.server_name for d in docs] == ["Service default/ratings", "HTTPRoute default/reviews"]
    assert docs[0].source == "mesh.yaml document 1"


def test_directory_reads_manifests_in_name_order_and_ignores_other_files(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(ROUTE)
    (tmp_path / "a.yaml").write_text(SERVICE)
    (tmp_path / "c.json").write_text(
        '{"apiVersion": "gossamer.dev/v1", "kind": "Service", "metadata": {"name": "c"}}'
    )
    (tmp_path / "notes.txt").write_text("not: a manifest")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.yaml").write_text(SERVICE)
    docs = read_documents([str(tmp_path)], io.StringIO())
    assert [d.raw["metadata"]["name"] for d in docs] == ["ratings", "reviews", "c"]
    assert docs[2].source == f"{tmp_path / 'c.json'} document 1"


def test_stdin_is_read_for_dash() -> None:
    docs = read_documents(["-"], io.StringIO(SERVICE))
    assert docs[0].source == "<stdin> document 1"
    assert docs[0].raw["metadata"] == {"name": "ratings"}


def test_missing_path_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_documents([str(tmp_path / "nope.yaml")], io.StringIO())


def test_yaml_syntax_errors_name_file_and_line_for_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SERVICE + "spec:\n  ports: [1, 2\n")
    (tmp_path / "b.yaml").write_text("kind: Service\nmetadata: {name: x\n")
    with pytest.raises(ValidationFailed) as info:
        read_documents([str(tmp_path)], io.StringIO())
    rendered = locate_errors([e.to_dict() for e in info.value.errors], [])
    assert len(rendered) == 2
    assert rendered[0].startswith(f"{tmp_path / 'a.yaml'} (line 6): invalid YAML")
    assert rendered[1].startswith(f"{tmp_path / 'b.yaml'} (line 3): invalid YAML")


def test_list_documents_expand_with_lines_rerooted() -> None:
    text = (
        '{"kind": "List", "items": [\n'
        '  {"kind": "Service", "metadata": {"name": "a"}},\n'
        '  {"kind": "Service",\n'
        '   "metadata": {"name": "b"}}]}\n'
    )
    docs = documents_from_text(text, "list.json")
    assert [d.raw["metadata"]["name"] for d in docs] == ["a", "b"]
    assert docs[1].source == "list.json document 1 item 2"
    assert docs[1].line_of("metadata.name") == 4
    assert docs[1].line_of("kind") == 3


def test_server_errors_point_back_at_file_and_line() -> None:
    docs = documents_from_text(SERVICE + "---\n" + ROUTE + "---\n- not a mapping\n", "mesh.yaml")
    errors = [
        {
            "document": "HTTPRoute default/reviews",
            "field": "spec.rules[0].backendRefs[0].weight",
            "message": "Input should be greater than or equal to 0",
            "value": -1,
        },
        # A missing field has no line of its own: its nearest ancestor's line is used.
        {"document": "HTTPRoute default/reviews", "field": "spec.hostnames[3]", "message": "x"},
        {"document": "document 3", "field": "", "message": "a document must be a mapping"},
        {"document": "Gizmo default/z", "field": "kind", "message": "unknown", "line": 7},
    ]
    assert locate_errors(errors, docs) == [
        "HTTPRoute default/reviews (mesh.yaml document 2, line 14): "
        "spec.rules[0].backendRefs[0].weight: Input should be greater than or equal to 0: got -1",
        "HTTPRoute default/reviews (mesh.yaml document 2, line 9): spec.hostnames[3]: x",
        "document 3 (mesh.yaml document 3 item 1, line 16): a document must be a mapping",
        "Gizmo default/z (line 7): kind: unknown",
    ]


def test_locate_errors_survives_odd_error_entries() -> None:
    assert locate_errors([{}, {"document": 5, "field": None, "value": [1]}], []) == [
        "request: ",
        "5: : got [1]",
    ]
