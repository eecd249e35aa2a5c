"""bench/edge.py's gateway configuration is valid for the model (a typo there would only
show as a harness failure deep in `make bench`), and its report computes ratios right."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gossamer.model import parse_document

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # bench/ is a top-level package of the repo, not installed


@pytest.mark.parametrize("backend", ["bench-direct", "bench-app"])
def test_gateway_documents_parse(tmp_path: Path, backend: str) -> None:
    from bench.certs import write_certs
    from bench.edge import DIRECT, gateway_documents

    certs = write_certs(tmp_path)
    docs = gateway_documents(certs, backend, 18080)
    kinds = [parse_document(doc, f"doc {i}").to_doc()["kind"] for i, doc in enumerate(docs)]
    assert kinds[:3] == ["Service", "Gateway", "HTTPRoute"]
    assert ("Instance" in kinds) == (backend == DIRECT)


def test_rows_and_render() -> None:
    from bench.edge import _row, render

    row = _row("gateway one-hop", [(100.0, 1.0, 2.0), (300.0, 3.0, 4.0), (200.0, 2.0, 9.0)], [])
    assert row["rps_median"] == 200.0 and row["p99_ms_median"] == 4.0 and row["runs_ok"] == 3
    failed = _row("nginx one-hop", [], ["status=3"])
    assert failed["rps_median"] is None and failed["runs_failed"] == ["status=3"]
    text = render({"rows": [{**row, "rps_vs_haproxy": 0.5}, failed], "notes": ["n"]})
    assert "gateway one-hop" in text and "0.5" in text and "note: n" in text
