"""The other side of the wire: every golden snapshot is one the sidecar accepts whole,
with nothing lost and every backend a route names resolvable inside the view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gossamer.proxy.snapshot import Snapshot

CASES = Path(__file__).parent / "compiler"
EXPECTED = sorted(CASES.glob("*/expected.json"))


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: p.parent.name)
def test_sidecar_accepts_the_compiled_snapshot(expected: Path) -> None:
    message = json.loads(expected.read_text())
    snapshot = Snapshot.from_wire(message)
    assert snapshot.version == message["version"]
    assert snapshot.outbound_policy == message["mesh"]["outboundTrafficPolicy"]
    for key, entry in message["services"].items():
        view = snapshot.lookup(f"{entry['name']}.{entry['namespace']}")
        assert view is not None and view.key == key
        assert view.exists is entry["exists"]
        assert [e.id for e in view.endpoints] == [e["id"] for e in entry["endpoints"]]
        assert len(view.routes) == len(entry["routes"])
        for route in entry["routes"]:
            for backend in route["backends"]:
                assert view.backend(backend["service"], backend["labels"]) is not None
