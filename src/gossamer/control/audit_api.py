"""Reading the audit log back: who changed what, for the dashboard's Events page.

The control plane appends one JSON line per state-changing request to `<data-dir>/audit.log`
(control/security.py: time, who, role, method, path, status; never bodies or tokens). This
serves the newest lines:

GET /api/v1/audit?limit=100   → {"items": [newest first]}   (limit 1-1000, default 100)

Only the file's tail is read (at most TAIL_BYTES), so a long-lived log costs the same.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from gossamer.control.errors import ApiError, json_response

TAIL_BYTES = 512 * 1024
MAX_LIMIT = 1000
FIELDS = ("time", "who", "role", "method", "path", "status")


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return 100
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise ApiError(400, f"limit {value!r}: use a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def newest_entries(tail: bytes, limit: int, partial_first: bool) -> list[dict[str, Any]]:
    """The last `limit` well-formed entries of a log tail, newest first. A first line cut by
    the tail's start, a torn last line or a foreign line is skipped, never an error."""
    lines = tail.split(b"\n")
    if partial_first:
        lines = lines[1:]
    out: list[dict[str, Any]] = []
    for raw in reversed(lines):
        if len(out) == limit:
            break
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append({key: entry.get(key) for key in FIELDS})
    return out


def read_tail(path: Path) -> tuple[bytes, bool]:
    """(the last TAIL_BYTES of the file, whether that cut the file); empty if absent."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            start = max(0, size - TAIL_BYTES)
            f.seek(start)
            return f.read(), start > 0
    except FileNotFoundError:
        return b"", False


def audit_routes(path: Path | None) -> list[web.RouteDef]:
    async def audit(request: web.Request) -> web.Response:
        limit = parse_limit(request.query.get("limit"))
        if path is None:
            return json_response({"items": []})
        tail, cut = await asyncio.to_thread(read_tail, path)
        return json_response({"items": newest_entries(tail, limit, cut)})

    return [web.get("/api/v1/audit", audit)]
