"""Every case under tests/golden/compiler/<case>/: input.yaml (resources, Instances with
status) and view.txt (the keys a proxy asks for, one a line, '#' comments) compile to
expected.json, the full snapshot message. `pytest --update-golden` rewrites expected.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gossamer.control.compiler import compile_view, encode_message
from gossamer.control.state import MeshState
from gossamer.model.parse import load_yaml, parse_documents
from gossamer.store.base import Event, Record

CASES = Path(__file__).parent / "compiler"
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if (p / "input.yaml").exists())


def load_records(case: Path) -> list[Record]:
    """Validate the documents as `apply` would, keep their status as the registry writes it.

    All at revision 1, as one `gossamer apply -f` transaction stores them: route age then
    comes from creationTimestamp alone, so the namespace/name tie-breaker can show."""
    items = load_yaml((case / "input.yaml").read_text(), f"{case.name}/input.yaml")
    resources = parse_documents(items)
    records = []
    for res, (raw, _, _) in zip(resources, items, strict=True):
        value: dict[str, Any] = {**res.to_doc(), "status": raw.get("status") or {}}
        kind, namespace, name = res.key
        records.append(Record(kind, namespace, name, value, 1, 1))
    return records


def load_view(case: Path) -> list[str]:
    lines = (case / "view.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_there_are_cases() -> None:
    assert len(CASE_NAMES) >= 11


@pytest.mark.parametrize("name", CASE_NAMES)
def test_compiled_view_matches_golden(name: str, update_golden: bool) -> None:
    case = CASES / name
    records = load_records(case)
    state = MeshState.from_records(records, revision=1)
    message = compile_view(state, load_view(case))
    expected_file = case / "expected.json"
    rendered = json.dumps(message, indent=2, sort_keys=True) + "\n"
    if update_golden:
        expected_file.write_text(rendered)
    assert expected_file.exists(), f"no {expected_file}: run pytest --update-golden and review it"
    assert json.loads(rendered) == json.loads(expected_file.read_text())
    # The wire form is the compact encoding of the same message.
    assert json.loads(encode_message(message)) == message


@pytest.mark.parametrize("name", CASE_NAMES)
def test_events_in_any_order_build_the_same_state(name: str) -> None:
    """Feeding the documents one watch event at a time, newest first, compiles the same view
    as loading them all at once: the incremental index agrees with the bulk one."""
    case = CASES / name
    records = load_records(case)
    keys = load_view(case)
    bulk = MeshState.from_records(records, revision=1)
    incremental = MeshState()
    for record in reversed(records):
        incremental.apply_event(Event("PUT", record, 1))
    assert incremental.revision == bulk.revision
    assert compile_view(incremental, keys) == compile_view(bulk, keys)
