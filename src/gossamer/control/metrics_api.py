"""Golden metrics endpoints (docs/protocol.md, "Telemetry from proxies") and Prometheus
HTTP service discovery of every registered sidecar's stats listener."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gossamer.control.errors import ApiError, json_response, read_json_object
from gossamer.control.telemetry import ReportError, TelemetryStore, parse_report
from gossamer.control.telemetry.window import HORIZON_SECONDS
from gossamer.model import FieldError
from gossamer.model.common import check_dns_label
from gossamer.store.base import Store

DEFAULT_WINDOW = 60.0
MAX_TOP = 100
_WINDOW = re.compile(r"^(\d+(?:\.\d+)?)(s|m)?$")


def parse_window(value: str | None) -> float:
    """'60s', '1m', '90' (seconds) -> seconds in (0, 600]; anything else is a 400."""
    if value is None or value == "":
        return DEFAULT_WINDOW
    match = _WINDOW.match(value.strip())
    seconds = 0.0
    if match:
        seconds = float(match.group(1)) * (60.0 if match.group(2) == "m" else 1.0)
    if not match or not 0 < seconds <= HORIZON_SECONDS:
        raise ApiError(400, f"window {value!r}: use e.g. 30s, 1m or 10m (at most 10m)")
    return seconds


def parse_service(value: str | None, required: bool = False) -> str:
    """'namespace/name' or 'name' (namespace default) -> 'namespace/name'; '' when absent."""
    if not value:
        if required:
            raise ApiError(400, "service is required, as namespace/name or name")
        return ""
    namespace, _, name = value.rpartition("/")
    try:
        check_dns_label(namespace or "default")
        check_dns_label(name)
    except ValueError as exc:
        raise ApiError(400, f"service {value!r}: {exc}") from None
    return f"{namespace or 'default'}/{name}"


def scrape_targets(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prometheus http_sd groups: one per healthy instance that reported its stats port."""
    groups = []
    for doc in instances:
        spec = doc.get("spec") or {}
        meta = doc.get("metadata") or {}
        if (doc.get("status") or {}).get("health") == "unhealthy" or not spec.get("statsPort"):
            continue
        labels = {
            "namespace": str(meta.get("namespace", "default")),
            "service": str(spec.get("service", "")),
            "instance": str(spec.get("proxy") or meta.get("name", "")),
        }
        version = (spec.get("labels") or {}).get("version")
        if version:
            labels["version"] = str(version)
        host = str(spec.get("address", ""))
        host = f"[{host}]" if ":" in host else host
        groups.append({"targets": [f"{host}:{spec['statsPort']}"], "labels": labels})
    return sorted(groups, key=lambda g: g["targets"])


class MetricsApi:
    def __init__(
        self,
        store: Store,
        telemetry: TelemetryStore,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.telemetry = telemetry
        self.wall_clock = wall_clock

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/proxies/{id}/telemetry", self.report),
            web.get("/api/v1/metrics/services", self.services),
            web.get("/api/v1/metrics/edges", self.edges),
            web.get("/api/v1/metrics/top", self.top),
            web.get("/api/v1/prometheus/targets", self.targets),
        ]

    async def report(self, request: web.Request) -> web.Response:
        proxy_id = request.match_info["id"]
        try:
            check_dns_label(proxy_id)
        except ValueError as exc:
            raise ApiError(400, f"proxy id {proxy_id!r}: {exc}") from None
        body = await read_json_object(request)
        try:
            report = parse_report(body)
        except ReportError as exc:
            error = FieldError(f"telemetry from {proxy_id}", exc.field, exc.message)
            raise ApiError(422, f"bad telemetry report: {exc}", [error]) from None
        accepted = self.telemetry.ingest(proxy_id, report, self.wall_clock())
        return json_response({"accepted": accepted})

    async def services(self, request: web.Request) -> web.Response:
        window = parse_window(request.query.get("window"))
        direction = request.query.get("direction", "outbound")
        if direction not in ("outbound", "inbound"):
            raise ApiError(400, f"direction {direction!r}: use outbound or inbound")
        service = parse_service(request.query.get("service"))
        items = self.telemetry.services(self.wall_clock(), window, direction)
        if service:
            items = [i for i in items if i["service"] == service]
        return json_response({"window": window, "direction": direction, "items": items})

    async def edges(self, request: web.Request) -> web.Response:
        window = parse_window(request.query.get("window"))
        service = parse_service(request.query.get("service"))
        items = self.telemetry.edges(self.wall_clock(), window, service)
        return json_response({"window": window, "items": items})

    async def top(self, request: web.Request) -> web.Response:
        window = parse_window(request.query.get("window"))
        service = parse_service(request.query.get("service"), required=True)
        raw_limit = request.query.get("limit", "20")
        if not raw_limit.isdigit() or not 0 < int(raw_limit) <= MAX_TOP:
            raise ApiError(400, f"limit {raw_limit!r}: a whole number from 1 to {MAX_TOP}")
        items = self.telemetry.top(service, self.wall_clock(), window, int(raw_limit))
        return json_response({"window": window, "service": service, "items": items})

    async def targets(self, request: web.Request) -> web.Response:
        records, _ = await self.store.list("Instance")
        return web.json_response(scrape_targets([r.value for r in records]))
