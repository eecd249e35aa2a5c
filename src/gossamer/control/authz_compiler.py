"""ENTRY["authz"] and ENTRY["mtls"]: the security policies that apply to one service, in the
lean form the inbound sidecar of that service evaluates (proxy/authz.py). Pure functions.

    compile_authz(state, "default/reviews")  # [{"name", "action", "selector", "rules"}]
    compile_mtls(state, "default/reviews")   # "STRICT" | "PERMISSIVE"

Choices made here (docs/protocol.md documents the shape):
- `selector` keeps the instance labels of `matchLabels` (without `service`, which the
  control plane already resolved): the sidecar matches them against its own labels.
- `from[].source` and `to[].operation` are flattened to `from[]` and `to[]`; empty lists
  are left out. Principals lose a `spiffe://` prefix (Istio's form). A bare name in
  `services` is in the policy's namespace: "frontend" becomes "<ns>/frontend".
- Policies are listed by namespace then name.
- mTLS mode: a service-selecting PeerAuthentication of the service's namespace, else a
  namespace-wide one, else a mesh-wide one (root namespace, no selector), else STRICT. Of
  several at one level the oldest wins (Istio's rule).
- A document that is not the canonical shape (a hand-edited store) is skipped for authz
  only if it can be skipped safely: a malformed DENY becomes a DENY of everything (fails
  closed), a malformed ALLOW an ALLOW of nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gossamer.control.state import MeshState, Selecting
from gossamer.model.security import SERVICE_LABEL

DEFAULT_MTLS = "STRICT"
_SCHEME = "spiffe://"
_SOURCE_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces", "services")
_OPERATION_FIELDS = ("paths", "notPaths", "methods", "notMethods")


def compile_authz(state: MeshState, key: str) -> list[dict[str, Any]]:
    policies = state.selecting("AuthorizationPolicy", key)
    policies.sort(key=lambda p: (p.namespace, p.name))
    return [compile_policy(p) for p in policies]


def compile_policy(policy: Selecting) -> dict[str, Any]:
    spec = policy.spec
    action = spec.get("action", "ALLOW")
    name = f"{policy.namespace}/{policy.name}"
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = {k: v for k, v in sorted(selector.items()) if k != SERVICE_LABEL}
    try:
        rules = [_rule(rule, policy.namespace) for rule in spec.get("rules") or ()]
    except (KeyError, TypeError, ValueError, AttributeError):
        rules = [{}] if action == "DENY" else []  # fail closed either way
    return {"name": name, "action": action, "selector": labels, "rules": rules}


def _rule(rule: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sources = [_source(f["source"], namespace) for f in rule.get("from") or ()]
    operations = [_lists(t["operation"], _OPERATION_FIELDS) for t in rule.get("to") or ()]
    conditions = [_condition(c) for c in rule.get("when") or ()]
    if sources:
        out["from"] = sources
    if operations:
        out["to"] = operations
    if conditions:
        out["when"] = conditions
    return out


def _source(source: Mapping[str, Any], namespace: str) -> dict[str, list[str]]:
    out = _lists(source, _SOURCE_FIELDS)
    for field in ("principals", "notPrincipals"):
        if field in out:
            out[field] = [_bare(p) for p in out[field]]
    if "services" in out:
        out["services"] = [s if "/" in s else f"{namespace}/{s}" for s in out["services"]]
    return out


def _condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    key = condition["key"]
    out: dict[str, Any] = {"key": key, **_lists(condition, ("values", "notValues"))}
    if key == "source.principal":
        out = {k: [_bare(v) for v in vs] if k != "key" else vs for k, vs in out.items()}
    return out


def _lists(obj: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, list[str]]:
    return {f: [str(v) for v in obj[f]] for f in fields if obj.get(f)}


def _bare(principal: str) -> str:
    return principal[len(_SCHEME) :] if principal.startswith(_SCHEME) else principal


def compile_mtls(state: MeshState, key: str) -> str:
    namespace, _, _ = key.partition("/")
    policies = state.selecting("PeerAuthentication", key)  # oldest first

    def level(p: Selecting) -> int:
        if p.namespace == namespace:
            return 0 if p.service is not None else 1
        return 2 if p.service is None else 3  # a root policy naming a service is not mesh-wide

    for p in sorted(policies, key=level):
        if level(p) < 3:
            mode = (p.spec.get("mtls") or {}).get("mode", DEFAULT_MTLS)
            return mode if mode in ("STRICT", "PERMISSIVE") else DEFAULT_MTLS
    # No PeerAuthentication: the control plane's mesh-wide mode (`gossamer control --mtls`).
    return str((state.trust or {}).get("mtls", DEFAULT_MTLS))
