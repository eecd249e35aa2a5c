"""`GET /api/v1/tap`: merge the live tap streams of every sidecar of a service.

The control plane opens `GET /tap?...` on each healthy sidecar's stats listener, adds the
proxy id to every summary line and writes the lines to the caller as they come, until the
caller goes away or `limit` lines were sent. Nothing is recorded when no one taps.

Tapping shows live request paths of any service, so only admins may (auth.py). The
control plane presents its tap secret (security.py; sidecars got it in their snapshot's
mesh section) as a bearer to each sidecar, which answers 401 without it.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from gossamer.control.errors import ApiError
from gossamer.control.metrics_api import parse_service, scrape_targets
from gossamer.store.base import Store

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_LINE_BYTES = 64 * 1024
_STATUS = re.compile(r"^[1-5](xx|[0-9]{2})$")
_METHOD = re.compile(r"^[A-Z]{1,20}$")


def tap_query(query: Any) -> dict[str, str]:
    """The filters passed on to sidecars, validated: path prefix, method, status (5xx, 503)."""
    out: dict[str, str] = {}
    path, method, status = query.get("path"), query.get("method"), query.get("status")
    if path:
        if not path.startswith("/") or len(path) > 1024:
            raise ApiError(400, f"path {path[:80]!r}: a prefix starting with '/'")
        out["path"] = path
    if method:
        if not _METHOD.match(method.upper()):
            raise ApiError(400, f"method {method[:40]!r}: an HTTP method like GET")
        out["method"] = method.upper()
    if status:
        if not _STATUS.match(status):
            raise ApiError(400, f"status {status[:40]!r}: a class like 5xx or a code like 503")
        out["status"] = status
    return out


class TapApi:
    def __init__(self, store: Store, secret: str | None = None) -> None:
        self.store = store
        self.secret = secret  # None: no security configured, sidecars' taps are open

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1/tap", self.tap)]

    async def tap(self, request: web.Request) -> web.StreamResponse:
        service = parse_service(request.query.get("service"), required=True)
        filters = tap_query(request.query)
        raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
        if not raw_limit.isdigit() or not 0 < int(raw_limit) <= MAX_LIMIT:
            raise ApiError(400, f"limit {raw_limit!r}: a whole number from 1 to {MAX_LIMIT}")
        namespace, name = service.split("/")
        records, _ = await self.store.list("Instance", namespace)
        docs = [r.value for r in records if (r.value.get("spec") or {}).get("service") == name]
        targets = scrape_targets(docs)
        if not targets:
            raise ApiError(404, f"no healthy sidecar of {service} reports a stats listener")
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        lines: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
        async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.TaskGroup() as tg:
            readers = [
                tg.create_task(self._follow(session, group, filters, lines)) for group in targets
            ]
            try:
                await self._relay(response, lines, int(raw_limit), readers)
            finally:
                for task in readers:
                    task.cancel()
        return response

    async def _relay(
        self,
        response: web.StreamResponse,
        lines: asyncio.Queue[bytes],
        limit: int,
        readers: list[asyncio.Task[None]],
    ) -> None:
        sent = 0
        while sent < limit:
            running = [t for t in readers if not t.done()]
            if not running and lines.empty():
                return  # every sidecar closed its stream
            getter = asyncio.ensure_future(lines.get())
            done, _ = await asyncio.wait([getter, *running], return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                continue
            await response.write(getter.result())
            sent += 1

    async def _follow(
        self,
        session: aiohttp.ClientSession,
        group: dict[str, Any],
        filters: dict[str, str],
        lines: asyncio.Queue[bytes],
    ) -> None:
        target, proxy = group["targets"][0], group["labels"]["instance"]
        url = f"http://{target}/tap" + (f"?{urlencode(filters)}" if filters else "")
        headers = {"Authorization": f"Bearer {self.secret}"} if self.secret else {}
        try:
            async with session.get(url, headers=headers) as resp:
                if resp.status != 200:
                    await lines.put(_line({"proxy": proxy, "error": f"tap answered {resp.status}"}))
                    return
                while line := await resp.content.readline():
                    if len(line) > MAX_LINE_BYTES:
                        continue
                    try:
                        summary = json.loads(line)
                    except ValueError:
                        continue  # one bad line does not end the tap
                    if isinstance(summary, dict):
                        await lines.put(_line({**summary, "proxy": proxy}))
        except (aiohttp.ClientError, OSError) as exc:
            await lines.put(_line({"proxy": proxy, "error": f"tap failed: {exc}"}))


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"
