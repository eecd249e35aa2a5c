"""Pure rules for the fields the system owns (uid, creationTimestamp, resourceVersion,
generation, status) and for the warnings about references to unknown services."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gossamer.model import FieldError, ValidationFailed
from gossamer.model.parse import Resource
from gossamer.store.base import Record

Action = Literal["created", "configured", "unchanged"]
# metadata fields a user writes; everything else in metadata belongs to the system.
USER_METADATA = ("name", "namespace", "labels", "annotations")
# What reads show instead of a Secret's private key; writing it back keeps the stored key,
# so `get -o yaml | apply -f -` round-trips without losing the key.
REDACTED = "<redacted>"


def rfc3339(wall_seconds: float) -> str:
    return datetime.fromtimestamp(wall_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Planned:
    """What one write will store, and what kind of change it is."""

    value: dict[str, Any]
    action: Action
    expected_revision: int  # 0: must not exist yet; N: must still be at mod revision N


def plan_write(
    resource: Resource,
    existing: Record | None,
    warnings: list[str] | None,
    wall_now: float,
    make_uid: Callable[[], str] = new_uid,
) -> Planned:
    """The stored document for `resource`, keeping system fields of `existing`.

    `warnings` None leaves status.warnings as they are (kinds without service refs)."""
    doc = resource.to_doc()
    if resource.kind == "Secret" and doc["spec"].get("key") == REDACTED:
        if existing is None:
            kind, ns, name = resource.key
            raise ValidationFailed(
                [
                    FieldError(
                        f"{kind} {ns}/{name}",
                        "spec.key",
                        f"is {REDACTED!r} (as reads show it): a new Secret needs the PEM private key",
                    )
                ]
            )
        doc["spec"]["key"] = existing.value.get("spec", {}).get("key")
    meta = {k: doc["metadata"][k] for k in USER_METADATA if k in doc["metadata"]}
    if existing is None:
        status: dict[str, Any] = {}
        if warnings:
            status["warnings"] = warnings
        meta.update(uid=make_uid(), creationTimestamp=rfc3339(wall_now), generation=1)
        value = {**doc, "metadata": meta, "status": status}
        return Planned(value, "created", 0)
    old = existing.value
    old_meta = old.get("metadata", {})
    spec_changed = old.get("spec") != doc["spec"]
    generation = int(old_meta.get("generation") or 1) + (1 if spec_changed else 0)
    meta.update(
        uid=old_meta.get("uid") or make_uid(),
        creationTimestamp=old_meta.get("creationTimestamp") or rfc3339(wall_now),
        generation=generation,
    )
    status = dict(old.get("status") or {})
    if warnings is not None:
        if warnings:
            status["warnings"] = warnings
        else:
            status.pop("warnings", None)
    value = {**doc, "metadata": meta, "status": status}
    action: Action = "unchanged" if value == _without_version(old) else "configured"
    return Planned(value, action, existing.mod_revision)


def _without_version(value: dict[str, Any]) -> dict[str, Any]:
    meta = value.get("metadata", {})
    if "resourceVersion" not in meta:
        return value
    return {**value, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}


def to_api(record: Record) -> dict[str, Any]:
    """The document as served: the stored value plus metadata.resourceVersion."""
    value = record.value
    meta = {**value.get("metadata", {}), "resourceVersion": str(record.mod_revision)}
    if record.kind == "Secret":  # a private key is served only to gateways (gateway_api.py)
        value = {**value, "spec": {**value.get("spec", {}), "key": REDACTED}}
    return {**value, "metadata": meta, "status": value.get("status") or {}}


def service_refs(kind: str, namespace: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, "namespace/name") of every Service a route or policy sends traffic to."""
    refs: list[tuple[str, str]] = []

    def add(path: str, ref: dict[str, Any]) -> None:
        if ref.get("kind", "Service") == "Service" and "name" in ref:
            refs.append((path, f"{ref.get('namespace') or namespace}/{ref['name']}"))

    if kind == "HTTPRoute":
        for r, rule in enumerate(spec.get("rules", [])):
            for b, backend in enumerate(rule.get("backendRefs", [])):
                add(f"spec.rules[{r}].backendRefs[{b}]", backend)
                for f, flt in enumerate(backend.get("filters", [])):
                    if mirror := flt.get("requestMirror"):
                        add(f"spec.rules[{r}].backendRefs[{b}].filters[{f}]", mirror["backendRef"])
            for f, flt in enumerate(rule.get("filters", [])):
                if mirror := flt.get("requestMirror"):
                    add(
                        f"spec.rules[{r}].filters[{f}].requestMirror.backendRef",
                        mirror["backendRef"],
                    )
    elif kind == "TrafficPolicy":
        for t, target in enumerate(spec.get("targetRefs", [])):
            add(f"spec.targetRefs[{t}]", target)
    return refs


KINDS_WITH_REFS = ("HTTPRoute", "TrafficPolicy")


def missing_service_warnings(resource: Resource, exists: Callable[[str], bool]) -> list[str] | None:
    """Warnings for refs to services that neither are declared nor have instances.

    None for kinds that cannot reference services."""
    if resource.kind not in KINDS_WITH_REFS:
        return None
    doc = resource.to_doc()
    namespace = resource.metadata.namespace
    return [
        f"{field} names service {key}, which does not exist (no Service and no instances)"
        for field, key in service_refs(resource.kind, namespace, doc["spec"])
        if not exists(key)
    ]
