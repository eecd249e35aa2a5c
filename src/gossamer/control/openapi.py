"""OpenAPI 3.1 for the control-plane API, built from the model's pydantic schemas and the
endpoint table below (kept next to the routes it describes)."""

from __future__ import annotations

from typing import Any

from gossamer import __version__
from gossamer.control.auth import OPEN_PATHS
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
        (
            "post",
            f"/api/v1/namespaces/{{ns}}/canaries/{{name}}/{action}",
            summary,
            None,
            None,
            False,
        )
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
    (
        "get",
        "/api/v1/snapshot/namespaces/{ns}/services/{name}",
        "Compiled entry",
        None,
        None,
        False,
    ),
]
# Served only when the control plane runs its CA and credentials (control/ca_api.py,
# audit_api.py); who may call what: control/auth.py.
SECURITY_ENDPOINTS: list[Endpoint] = [
    (
        "get",
        "/api/v1/trust-bundle",
        "The mesh CA's trust bundle (open)",
        None,
        "TrustBundle",
        False,
    ),
    ("get", "/api/v1/ca", "CA state: roots, expiry, rotation, stale proxies", None, None, False),
    ("post", "/api/v1/ca/rotation", "Step a root rotation (admin)", "RotationRequest", None, False),
    ("get", "/api/v1/identities", "Certificates in use per instance", None, None, False),
    (
        "post",
        "/api/v1/proxies/{id}/certificate",
        "Sign a sidecar's CSR (its own service's SPIFFE ID only)",
        "CertificateRequest",
        "Certificate",
        False,
    ),
    ("get", "/api/v1/tokens", "Credentials issued (never their secrets; admin)", None, None, False),
    ("post", "/api/v1/tokens", "Issue a credential (admin)", "TokenRequest", "Token", False),
    ("delete", "/api/v1/tokens/{token}", "Revoke a credential by id (admin)", None, None, False),
    ("post", "/api/v1/login", "Dashboard session from a credential", "LoginRequest", None, False),
    ("post", "/api/v1/logout", "End the dashboard session", None, None, False),
    ("get", "/api/v1/audit", "Recorded changes: who, what, when", None, None, False),
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
    schemas.update(_security_schemas())
    return schemas


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def _security_schemas() -> dict[str, Any]:
    text, seconds = {"type": "string"}, {"type": "integer", "minimum": 1}
    return {
        "TokenRequest": {
            "description": "Give service (a sidecar's bootstrap token) or operator.",
            **_obj(
                [],
                service=text,
                namespace={"type": "string", "default": "default"},
                operator=text,
                role={"enum": ["admin", "viewer"], "default": "viewer"},
                ttlSeconds=seconds,
            ),
        },
        "Token": _obj(
            ["id", "token", "role", "name", "expiresAt"],
            id=text,
            token={"type": "string", "description": "shown once; sidecar tokens end #sha256:CA"},
            role={"enum": ["admin", "viewer", "proxy"]},
            name=text,
            namespace={"type": ["string", "null"]},
            expiresAt={"type": "string", "format": "date-time"},
        ),
        "CertificateRequest": _obj(["csr"], csr={"type": "string", "description": "PEM CSR"}),
        "Certificate": _obj(
            ["certificate", "bundle", "spiffeId", "notAfter", "signer"],
            certificate=text,
            bundle=text,
            spiffeId=text,
            notAfter={"type": "string", "format": "date-time"},
            signer=text,
        ),
        "TrustBundle": _obj(
            ["trustDomain", "bundle", "fingerprint"],
            trustDomain=text,
            bundle=text,
            fingerprint=text,
        ),
        "RotationRequest": _obj(
            ["step"],
            step={"enum": ["begin", "switch", "finish"]},
            force={"type": "boolean", "default": False},
        ),
        "LoginRequest": _obj(["token"], token=text),
    }


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


def build_openapi(security: bool = False) -> dict[str, Any]:
    """The document for the routes served: the security ones only with `security` on,
    and then every operation says which credentials it takes (none for the open ones)."""
    paths: dict[str, dict[str, Any]] = {}
    endpoints = ENDPOINTS + _kind_endpoints() + (SECURITY_ENDPOINTS if security else [])
    for endpoint in endpoints:
        op = _operation(endpoint)
        if security and endpoint[1] in OPEN_PATHS:
            op["security"] = []  # answers without a credential
        elif security:
            op["security"] = [{"bearer": []}, {"session": []}]
            op["responses"]["401"] = {"description": "No valid credential"}
            op["responses"]["403"] = {"description": "The credential may not call this"}
        paths.setdefault(endpoint[1], {})[endpoint[0]] = op
    components: dict[str, Any] = {"schemas": _schemas()}
    if security:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "gst_... credential"},
            "session": {"type": "apiKey", "in": "cookie", "name": "gossamer_session"},
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "gossamer control plane", "version": __version__},
        "paths": paths,
        "components": components,
    }
