"""Every case under tests/golden/gateway/<case>/: input.yaml (validated as `apply` would)
compiles to expected.json, the gateway's view for the Gateway named in the case (`edge`,
in the Gateway document's namespace). `pytest --update-golden` rewrites expected.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gossamer.control.gateway_compiler import compile_gateway
from gossamer.model.parse import load_yaml, parse_documents

CASES = Path(__file__).parent / "gateway"
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if (p / "input.yaml").exists())


def load_docs(case: Path) -> dict[str, list[dict[str, Any]]]:
    items = load_yaml((case / "input.yaml").read_text(), f"{case.name}/input.yaml")
    docs: dict[str, list[dict[str, Any]]] = {}
    for res in parse_documents(items):
        docs.setdefault(res.kind, []).append(res.to_doc())
    return docs


def test_there_are_cases() -> None:
    assert len(CASE_NAMES) >= 2


@pytest.mark.parametrize("name", CASE_NAMES)
def test_gateway_view_matches_golden(name: str, update_golden: bool) -> None:
    docs = load_docs(CASES / name)
    gateway = docs["Gateway"][0]["metadata"]
    view = compile_gateway(docs, gateway.get("namespace", "default"), gateway["name"])
    rendered = json.dumps(view, indent=2, sort_keys=True) + "\n"
    expected_file = CASES / name / "expected.json"
    if update_golden:
        expected_file.write_text(rendered)
    assert expected_file.exists(), f"no {expected_file}: run pytest --update-golden and review it"
    assert json.loads(rendered) == json.loads(expected_file.read_text())
