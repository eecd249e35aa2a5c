"""MeshState: an in-memory index of the store, shaped for the snapshot compiler.

Feed it the store's records once, then every watch event:

    state = MeshState.from_records(records, revision)   # records of every kind, list revision
    changed = state.apply_event(event)                 # -> service keys ("ns/name") to recompile

`changed` holds the keys whose compiled ENTRY (see compiler.compile_entry) may differ after
the event, plus MESH_KEY when mesh-wide settings changed (then call compiler.compile_mesh).
It is empty when the event changes nothing a snapshot shows (a status-only write, a
heartbeat that leaves the health as it was). `state.revision` is the last revision applied.

Documents are the canonical dicts the control plane validated before storing them; they are
read with defaults, not re-validated. A document that is not the expected shape anyway (a
hand-edited store) is dropped from the index rather than crashing the control plane; its
key is kept in `state.malformed` so the server can report it.

Which entries an event touches:
- Service: its own key (existence, protocol).
- Instance: its service's key (and the previous service's, if it moved). Backends name
  other services only by key; their endpoints live in their own entries.
- HTTPRoute: every parent service, before and after the change.
- TrafficPolicy: every target service, before and after the change.
- MeshConfig "default" (namespace "default"): MESH_KEY.
- AuthorizationPolicy, PeerAuthentication: every existing service they select (by
  `selector.matchLabels.service`, else the namespace's, else the mesh's in the root
  namespace), before and after the change.

Every lookup is a dict access, and an event costs O(size of the changed document).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gossamer.model.security import ROOT_NAMESPACE, SERVICE_LABEL
from gossamer.store.base import Event, Record

MESH_KEY = "mesh"  # never a service key: those always contain "/"
MESH_CONFIG_NAME = ("default", "default")  # (namespace, name) of the one MeshConfig read

SECURITY_KINDS = ("AuthorizationPolicy", "PeerAuthentication")
ObjectKey = tuple[str, str]  # (namespace, name) within one kind
Age = tuple[float, int]  # (creationTimestamp as epoch seconds, create revision): older first


def service_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def split_key(key: str) -> tuple[str, str]:
    """'default/reviews' -> ('default', 'reviews'). Raises ValueError for any other shape."""
    namespace, sep, name = key.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"service key must be 'namespace/name', got {key!r}")
    return namespace, name


def _age(metadata: dict[str, Any], create_revision: int) -> Age:
    stamp = metadata.get("creationTimestamp")
    seconds = math.inf  # no timestamp: treat as the newest
    if isinstance(stamp, str):
        try:
            seconds = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            pass
    return (seconds, create_revision)


def _service_refs(refs: Any, default_namespace: str) -> frozenset[str]:
    """Keys of the Service-kind references in a parentRefs/targetRefs list."""
    keys = set()
    for ref in refs or ():
        if ref.get("kind", "Service") != "Service":
            continue  # Gateway parents belong to the edge, not to a service entry
        keys.add(service_key(ref.get("namespace") or default_namespace, ref["name"]))
    return frozenset(keys)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One instance as the index holds it: the wire dict plus what decides membership."""

    service: str  # the service key it belongs to
    healthy: bool
    wire: dict[str, Any]  # {"id", "address", "port", "labels"}: the ENTRY's endpoint form


@dataclass(frozen=True, slots=True)
class Attached:
    """A route or policy, indexed under the services it names."""

    namespace: str
    name: str
    age: Age
    services: frozenset[str]  # parents of a route, targets of a policy
    spec: dict[str, Any]

    @property
    def order(self) -> tuple[Age, str, str]:
        """Gateway API conflict order: older first, then namespace/name."""
        return (self.age, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Selecting:
    """An AuthorizationPolicy or PeerAuthentication, indexed by its namespace."""

    namespace: str
    name: str
    age: Age
    service: str | None  # selector.matchLabels.service; None: every service in scope
    spec: dict[str, Any]

    @property
    def order(self) -> tuple[Age, str, str]:
        return (self.age, self.namespace, self.name)

    def selects(self, key: str) -> bool:
        namespace, _, name = key.partition("/")
        in_scope = self.namespace in (namespace, ROOT_NAMESPACE)
        return in_scope and (self.service is None or self.service == name)


def _selecting(record: Record) -> Selecting:
    doc = record.value
    spec = doc["spec"]
    selector = spec.get("selector") or {}
    service = (selector.get("matchLabels") or {}).get(SERVICE_LABEL)
    age = _age(doc.get("metadata") or {}, record.create_revision)
    return Selecting(record.namespace, record.name, age, service, spec)


def _endpoint(doc: dict[str, Any], namespace: str, name: str) -> Endpoint:
    spec = doc["spec"]
    status = doc.get("status") or {}
    wire = {
        "id": name,
        "address": str(spec["address"]),
        "port": int(spec["port"]),
        "labels": dict(spec.get("labels") or {}),
    }
    healthy = status.get("health") != "unhealthy"
    return Endpoint(service_key(namespace, spec["service"]), healthy, wire)


def _attached(record: Record, refs_field: str) -> Attached:
    doc = record.value
    spec = doc["spec"]
    services = _service_refs(spec[refs_field], record.namespace)
    age = _age(doc.get("metadata") or {}, record.create_revision)
    return Attached(record.namespace, record.name, age, services, spec)


class MeshState:
    def __init__(self) -> None:
        self.revision = 0
        self.malformed: set[tuple[str, str, str]] = set()  # (kind, namespace, name)
        self._services: dict[str, dict[str, Any]] = {}  # key -> declared Service spec
        self._instances: dict[ObjectKey, Endpoint] = {}
        self._members: dict[str, dict[str, Endpoint]] = {}  # service key -> id -> every instance
        self._healthy: dict[str, dict[str, Endpoint]] = {}  # service key -> id -> healthy ones
        self._routes: dict[ObjectKey, Attached] = {}
        self._routes_by_parent: dict[str, dict[ObjectKey, Attached]] = {}
        self._policies: dict[ObjectKey, Attached] = {}
        self._policies_by_target: dict[str, dict[ObjectKey, Attached]] = {}
        self._mesh: dict[str, Any] | None = None  # spec of MeshConfig default/default
        # Set by the control plane, not the store: trustDomain, trustBundle, trustSigner, mtls.
        self.trust: dict[str, Any] | None = None
        # kind -> namespace -> (namespace, name) -> policy, for the two security kinds
        self._security: dict[str, dict[str, dict[ObjectKey, Selecting]]] = {
            kind: {} for kind in SECURITY_KINDS
        }

    @classmethod
    def from_records(cls, records: Iterable[Record], revision: int) -> MeshState:
        """The state of a store listing: records of every kind, read at `revision`."""
        state = cls()
        for record in records:
            state._put(record)
        state.revision = revision
        return state

    # --- reads (for the compiler) ------------------------------------------------------------

    def exists(self, key: str) -> bool:
        """Declared as a Service, or implied by at least one Instance (healthy or not)."""
        return key in self._services or key in self._members

    def service_spec(self, key: str) -> dict[str, Any] | None:
        """The declared Service's spec, None for an implied or unknown service."""
        return self._services.get(key)

    def healthy_endpoints(self, key: str) -> list[dict[str, Any]]:
        """Wire dicts of the service's healthy instances, sorted by id."""
        members = self._healthy.get(key)
        if not members:
            return []
        return [members[name].wire for name in sorted(members)]

    def routes_for(self, key: str) -> list[Attached]:
        """HTTPRoutes whose parentRefs name the service, in Gateway API conflict order."""
        routes = self._routes_by_parent.get(key)
        return sorted(routes.values(), key=lambda r: r.order) if routes else []

    def policy_for(self, key: str) -> Attached | None:
        """The TrafficPolicy targeting the service; of several, the oldest wins."""
        policies = self._policies_by_target.get(key)
        return min(policies.values(), key=lambda p: p.order) if policies else None

    def selecting(self, kind: str, key: str) -> list[Selecting]:
        """AuthorizationPolicies or PeerAuthentications that select the service, oldest first
        (those of the root namespace included)."""
        namespace, _ = split_key(key)
        by_ns = self._security[kind]
        found = [
            p
            for ns in {namespace, ROOT_NAMESPACE}
            for p in (by_ns.get(ns) or {}).values()
            if p.selects(key)
        ]
        return sorted(found, key=lambda p: p.order)

    @property
    def mesh_spec(self) -> dict[str, Any] | None:
        return self._mesh

    def service_keys(self) -> set[str]:
        """Every service that exists (declared or implied)."""
        return self._services.keys() | self._members.keys()

    # --- writes ------------------------------------------------------------------------------

    def apply_event(self, event: Event) -> set[str]:
        """Apply one watch event; returns the service keys (and MESH_KEY) it may change."""
        self.revision = max(self.revision, event.revision)
        if event.type == "DELETE":
            return self._delete(event.record)
        return self._put(event.record)

    def _put(self, record: Record) -> set[str]:
        ident = record.key
        try:
            return self._put_kind(record)
        except (KeyError, TypeError, ValueError, AttributeError):
            # Not the canonical shape: forget any previous version rather than crash.
            changed = self._delete(record)
            self.malformed.add(ident)
            return changed

    def _put_kind(self, record: Record) -> set[str]:
        kind, obj = record.kind, (record.namespace, record.name)
        doc = record.value
        self.malformed.discard(record.key)
        if kind == "Service":
            key = service_key(*obj)
            spec = dict(doc["spec"])
            old = self._services.get(key)
            self._services[key] = spec
            return set() if old is not None and _entry_view(old) == _entry_view(spec) else {key}
        if kind == "Instance":
            return self._put_instance(obj, _endpoint(doc, *obj))
        if kind == "HTTPRoute":
            return _put_attached(
                self._routes, self._routes_by_parent, obj, _attached(record, "parentRefs")
            )
        if kind == "TrafficPolicy":
            return _put_attached(
                self._policies, self._policies_by_target, obj, _attached(record, "targetRefs")
            )
        if kind in SECURITY_KINDS:
            return self._put_security(kind, obj, _selecting(record))
        if kind == "MeshConfig" and obj == MESH_CONFIG_NAME:
            spec = dict(doc["spec"])
            old_mesh, self._mesh = self._mesh, spec
            return set() if old_mesh == spec else {MESH_KEY}
        return set()

    def _put_security(self, kind: str, obj: ObjectKey, new: Selecting) -> set[str]:
        by_ns = self._security[kind].setdefault(obj[0], {})
        old = by_ns.get(obj)
        by_ns[obj] = new
        if old is not None and (old.spec, old.age) == (new.spec, new.age):
            return set()  # metadata or status only
        return self._selected_by(old) | self._selected_by(new)

    def _drop_security(self, kind: str, obj: ObjectKey) -> set[str]:
        by_ns = self._security[kind].get(obj[0]) or {}
        old = by_ns.pop(obj, None)
        if not by_ns:
            self._security[kind].pop(obj[0], None)
        return self._selected_by(old)

    def _selected_by(self, policy: Selecting | None) -> set[str]:
        if policy is None:
            return set()
        return {key for key in self.service_keys() if policy.selects(key)}

    def _put_instance(self, obj: ObjectKey, new: Endpoint) -> set[str]:
        old = self._instances.get(obj)
        if old == new:
            return set()  # e.g. a heartbeat: nothing the snapshot shows changed
        changed = self._drop_instance(obj)
        self._instances[obj] = new
        self._members.setdefault(new.service, {})[obj[1]] = new
        if new.healthy:
            self._healthy.setdefault(new.service, {})[obj[1]] = new
        changed.add(new.service)
        return changed

    def _drop_instance(self, obj: ObjectKey) -> set[str]:
        old = self._instances.pop(obj, None)
        if old is None:
            return set()
        _discard(self._members, old.service, obj[1])
        _discard(self._healthy, old.service, obj[1])
        return {old.service}

    def _delete(self, record: Record) -> set[str]:
        kind, obj = record.kind, (record.namespace, record.name)
        self.malformed.discard(record.key)
        if kind == "Service":
            key = service_key(*obj)
            return {key} if self._services.pop(key, None) is not None else set()
        if kind == "Instance":
            return self._drop_instance(obj)
        if kind == "HTTPRoute":
            return _drop_attached(self._routes, self._routes_by_parent, obj)
        if kind == "TrafficPolicy":
            return _drop_attached(self._policies, self._policies_by_target, obj)
        if kind in SECURITY_KINDS:
            return self._drop_security(kind, obj)
        if kind == "MeshConfig" and obj == MESH_CONFIG_NAME and self._mesh is not None:
            self._mesh = None
            return {MESH_KEY}
        return set()


def _entry_view(service_spec: dict[str, Any]) -> Any:
    """The part of a Service spec an ENTRY shows."""
    return service_spec.get("protocol", "HTTP")


def _discard(index: dict[str, dict[str, Endpoint]], key: str, name: str) -> None:
    members = index.get(key)
    if members is not None:
        members.pop(name, None)
        if not members:
            del index[key]


def _put_attached(
    by_obj: dict[ObjectKey, Attached],
    by_service: dict[str, dict[ObjectKey, Attached]],
    obj: ObjectKey,
    new: Attached,
) -> set[str]:
    old = by_obj.get(obj)
    if old is not None and old.spec == new.spec and old.age == new.age:
        by_obj[obj] = new
        for key in new.services:
            by_service[key][obj] = new
        return set()  # metadata or status only: no entry changes
    changed = _drop_attached(by_obj, by_service, obj)
    by_obj[obj] = new
    for key in new.services:
        by_service.setdefault(key, {})[obj] = new
    return changed | new.services


def _drop_attached(
    by_obj: dict[ObjectKey, Attached],
    by_service: dict[str, dict[ObjectKey, Attached]],
    obj: ObjectKey,
) -> set[str]:
    old = by_obj.pop(obj, None)
    if old is None:
        return set()
    for key in old.services:
        members = by_service.get(key)
        if members is not None:
            members.pop(obj, None)
            if not members:
                del by_service[key]
    return set(old.services)
