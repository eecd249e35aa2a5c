"""The audit log's tail as the Events page reads it: pure parsing, then a real control plane."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gossamer.control.audit_api import TAIL_BYTES, newest_entries, parse_limit, read_tail
from gossamer.control.errors import ApiError
from gossamer.control.security import Security
from gossamer.control.server import ControlServer, running
from gossamer.store.sqlite import SQLiteStore


def line(i: int, **extra: object) -> bytes:
    entry = {"time": f"t{i}", "who": "admin", "role": "admin", "method": "PUT", "path": f"/p{i}"}
    return json.dumps({**entry, "status": 200, **extra}).encode()


def test_newest_first_skipping_torn_and_foreign_lines() -> None:
    tail = b"\n".join([b'{"cut": tr', line(1), b"not json", b"[1]", line(2), b'{"torn'])
    entries = newest_entries(tail, 10, partial_first=True)
    assert [e["path"] for e in entries] == ["/p2", "/p1"]
    assert set(entries[0]) == {"time", "who", "role", "method", "path", "status"}
    assert [e["path"] for e in newest_entries(tail, 1, partial_first=True)] == ["/p2"]
    secret = newest_entries(line(3, token="gst_x.y"), 5, partial_first=False)
    assert "token" not in secret[0]  # only the known fields ever leave


def test_limits_and_the_tail_of_a_long_log(tmp_path: Path) -> None:
    assert parse_limit(None) == 100 and parse_limit("7") == 7
    for bad in ("0", "1001", "-1", "x", "1.5"):
        with pytest.raises(ApiError):
            parse_limit(bad)
    assert read_tail(tmp_path / "absent") == (b"", False)
    log = tmp_path / "audit.log"
    log.write_bytes(b"\n".join(line(i) for i in range(20_000)) + b"\n")
    tail, cut = read_tail(log)
    assert cut and len(tail) == TAIL_BYTES
    assert newest_entries(tail, 2, cut)[0]["path"] == "/p19999"


async def test_the_control_plane_serves_who_changed_what(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gossamer.db")
    server = ControlServer(store, port=0, security=Security.open(tmp_path, "cluster.local"))
    doc = {
        "apiVersion": "gossamer.dev/v1",
        "kind": "Service",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"ports": [{"port": 8080}]},
    }
    try:
        async with running(server):
            admin = (tmp_path / "credentials" / "admin.token").read_text().strip()
            url = f"http://127.0.0.1:{server.port}"
            async with httpx.AsyncClient(base_url=url) as http:
                assert (await http.get("/api/v1/audit")).status_code == 401
                http.headers["Authorization"] = f"Bearer {admin}"
                assert (await http.get("/api/v1/audit?limit=0")).status_code == 400
                applied = await http.post("/api/v1/apply", json={"documents": [doc]})
                assert applied.status_code == 200
                body = (await http.get("/api/v1/audit?limit=5")).json()
    finally:
        await store.close()
    newest = body["items"][0]
    assert newest["who"] == "admin" and newest["method"] == "POST"
    assert newest["path"] == "/api/v1/apply" and newest["status"] == 200
