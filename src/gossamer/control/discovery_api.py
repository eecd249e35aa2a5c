"""Discovery: which services exist (declared or implied by instances) and their endpoints."""

from __future__ import annotations

from aiohttp import web

from gossamer.control.errors import json_response
from gossamer.control.resources_api import parse_selector
from gossamer.store.base import Store


class DiscoveryApi:
    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/discovery/services", self.services),
            web.get("/api/v1/discovery/namespaces/{ns}/services/{name}/endpoints", self.endpoints),
        ]

    async def services(self, request: web.Request) -> web.Response:
        declared, _ = await self.store.list("Service")
        instances, _ = await self.store.list("Instance")
        counts: dict[tuple[str, str], list[int]] = {(r.namespace, r.name): [0, 0] for r in declared}
        for record in instances:
            service = (record.value.get("spec") or {}).get("service")
            if not isinstance(service, str):
                continue
            healthy_total = counts.setdefault((record.namespace, service), [0, 0])
            healthy_total[1] += 1
            if (record.value.get("status") or {}).get("health") != "unhealthy":
                healthy_total[0] += 1
        declared_keys = {(r.namespace, r.name) for r in declared}
        items = [
            {
                "namespace": ns,
                "name": name,
                "healthy": healthy,
                "total": total,
                "declared": (ns, name) in declared_keys,
            }
            for (ns, name), (healthy, total) in sorted(counts.items())
        ]
        return json_response({"items": items})

    async def endpoints(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        selector = parse_selector(request.query.get("labelSelector")) or {}
        instances, _ = await self.store.list("Instance", ns)
        items = []
        for record in instances:
            spec = record.value.get("spec") or {}
            if spec.get("service") != name:
                continue
            if (record.value.get("status") or {}).get("health") == "unhealthy":
                continue
            labels = spec.get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            items.append(
                {
                    "name": record.name,
                    "address": spec.get("address"),
                    "port": spec.get("port"),
                    "labels": labels,
                    "proxy": spec.get("proxy"),
                }
            )
        return json_response({"items": items})
