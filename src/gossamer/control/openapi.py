"""OpenAPI 3.1 for the control-plane API, built from the model's pydantic schemas and the
endpoint table below (kept next to the routes it describes)."""

from __future__ import annotations

from typing import Any

from gossamer import __version__
from gossamer.model import KINDS
from gossamer.model.resources import Metadata

REF = "#/components/schemas/{model}"
# (method, path, summary, request schema or None, response schema or None, streams)
Endpoint = tuple[str, str, str, str | None, str | None, bool]
ENDPOINTS: list[Endpoint] = [
    ("get", "/healthz", "Liveness", None, None, False),
    ("get", "/readyz", "Readiness: store open, serving", None, None, False),
    ("get", "/openapi.json", "This document", None, None, False),
    ("get", "/api/v1/version", "Version and protocols served", None, None, False),
    ("get", "/api/v1/session", "Who is logged in; the session's CSRF token", None, None, False),
    ("post", "/api/v1/apply", "Server-side apply, all-or-nothing", "ApplyRequest", None, False),
    ("post", "/api/v1/delete", "Delete many, all-or-nothing", "DeleteRequest", None, False),
    ("get", "/api/v1/watch", "Stream of store changes (NDJSON)", None, None, True),
    ("get", "/api/v1/discovery/services", "Services, declared or implied", None, None, False),
    (
        "get",
        "/api/v1/discovery/namespaces/{ns}/services/{name}/endpoints",
        "Healthy instances of a service",
        None,
        None,
        False,
    ),
    ("get", "/api/v1/proxies", "Connected proxies and their versions", None, None, False),
    ("post", "/api/v1/proxies/{id}/register", "Register an instance", None, None, False),
    ("post", "/api/v1/proxies/{id}/heartbeat", "Renew the lease", None, None, False),
    ("delete", "/api/v1/proxies/{id}", "Deregister at once", None, None, False),
    ("get", "/api/v1/proxies/{id}/stream", "Snapshot stream (NDJSON)", None, None, True),
    ("post", "/api/v1/proxies/{id}/ack", "Acknowledge a version", None, None, False),
    ("post", "/api/v1/proxies/{id}/watch", "Add services to the view", None, None, False),
    ("post", "/api/v1/proxies/{id}/telemetry", "Push measured telemetry", None, None, False),
    ("get", "/api/v1/proxies/{id}/gateway", "A gateway's view (long poll)", None, None, False),
    ("get", "/api/v1/metrics/services", "Golden metrics per service", None, None, False),
    ("get", "/api/v1/metrics/edges", "Golden metrics per caller edge", None, None, False),
    ("get", "/api/v1/metrics/top", "Busiest paths of a service", None, None, False),
    ("get", "/api/v1/tap", "Live request summaries (NDJSON)", None, None, True),
    ("get", "/api/v1/prometheus/targets", "Prometheus HTTP service discovery", None, None, False),
    *(
        ("post", f"/api/v1/namespaces/{{ns}}/canaries/{{name}}/{action}", summary, None, None, False)
        for action, summary in (
            ("start", "Start a canary run (body: {spec})"),
            ("promote", "Promote the canary now"),
            ("abort", "Abort the canary: all traffic back to the baseline"),
            ("pause", "Pause the canary at its step"),
            ("resume", "Resume a paused canary"),
        )
    ),
    ("get", "/api/v1/namespaces/{ns}/canaries/{name}/status", "A canary", None, None, False),
    ("post", "/api/v1/namespaces/{ns}/services/{name}/split", "Set weights", None, None, False),
    ("get", "/api/v1/snapshot/namespaces/{ns}/services/{name}", "Compiled entry", None, None, False),
]


def _kind_endpoints() -> list[Endpoint]:
    out: list[Endpoint] = []
    for info in KINDS.values():
        coll = f"/api/v1/namespaces/{{ns}}/{info.plural}"
        out += [
            (
                "get",
                f"/api/v1/{info.plural}",
                f"List {info.kind} in every namespace",
                None,
                "List",
                False,
            ),
            ("get", coll, f"List {info.kind} in a namespace", None, "List", False),
            ("post", coll, f"Create a {info.kind}", info.kind, info.kind, False),
            ("get", coll + "/{name}", f"Read a {info.kind}", None, info.kind, False),
            ("put", coll + "/{name}", f"Replace a {info.kind}", info.kind, info.kind, False),
            ("delete", coll + "/{name}", f"Delete a {info.kind}", None, info.kind, False),
        ]
    return out


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}

    def add(model: Any) -> None:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema

    add(Metadata)
    for info in KINDS.values():
        add(info.spec)
        schemas[info.kind] = {
            "type": "object",
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {
                "apiVersion": {"const": "gossamer.dev/v1"},
                "kind": {"const": info.kind},
                "metadata": {"$ref": REF.format(model="Metadata")},
                "spec": {"$ref": REF.format(model=info.spec.__name__)},
                "status": {"type": "object"},
            },
        }
    any_resource = {"oneOf": [{"$ref": REF.format(model=k)} for k in KINDS]}
    schemas["List"] = {
        "type": "object",
        "properties": {
            "kind": {"const": "List"},
            "items": {"type": "array", "items": any_resource},
            "revision": {"type": "integer"},
        },
    }
    schemas["ApplyRequest"] = {
        "type": "object",
        "required": ["documents"],
        "properties": {
            "documents": {"type": "array", "items": any_resource},
            "dryRun": {"type": "boolean", "default": False},
            "waitSeconds": {"type": "number", "minimum": 0},
        },
    }
    schemas["DeleteRequest"] = {
        "type": "object",
        "required": ["documents"],
        "properties": {"documents": {"type": "array", "items": {"type": "object"}}},
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["status", "reason", "message"],
        "properties": {
            "status": {"type": "integer"},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "field": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    }
    return schemas


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    method, path, summary, request, response, streams = endpoint
    content_type = "application/x-ndjson" if streams else "application/json"
    body: dict[str, Any] = {"type": "object"}
    if response:
        body = {"$ref": REF.format(model=response)}
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": f"{method}{path}".replace("/", "_").replace("{", "").replace("}", ""),
        "responses": {
            "200": {"description": "OK", "content": {content_type: {"schema": body}}},
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
            },
        },
    }
    params = [p[1:-1] for p in path.split("/") if p.startswith("{")]
    if params:
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
    if request:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=request)}}},
        }
    return op


def build_openapi() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS + _kind_endpoints():
        paths.setdefault(endpoint[1], {})[endpoint[0]] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "gossamer control plane", "version": __version__},
        "paths": paths,
        "components": {"schemas": _schemas()},
    }
