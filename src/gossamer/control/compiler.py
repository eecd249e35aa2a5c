"""The snapshot compiler: MeshState -> the wire messages of docs/protocol.md. Pure functions.

    entry = compile_entry(state, "default/reviews")   # one ENTRY; O(size of that service)
    mesh = compile_mesh(state)                        # {"outboundTrafficPolicy": ...}
    needed_services(entry)                            # keys its backends and mirrors name
    compile_closure(state, keys, known)               # entries for keys + what they need
    compile_view(state, keys)                         # the full {"type": "snapshot", ...} line
    encode_entry(obj) / encode_message(obj)           # compact, deterministic JSON bytes

Keys are "namespace/name"; a malformed key raises ValueError (validate proxy input with
state.split_key first). Returned dicts may share sub-objects: treat them as read-only.

Choices the protocol leaves open, made here:
- A match without a path matches PathPrefix "/" and is written that way; `matches: []` is
  one such match. Header names are lower-cased (HTTP compares them case-insensitively);
  of repeated header or query names only the first counts (Gateway API).
- A rule without backendRefs (and no RequestRedirect) sends to the parent service itself.
  Backends of weight 0 are left out. A backendRef of a kind other than (core) Service keeps
  its share with "invalid": reason, which the sidecar answers 500 invalid_backend.
- RequestMirror filters name their target as {"service": "ns/name", "percent": N}. Fault
  filters carry seconds and status: {"delay": {"seconds", "percent"}, "abort": {"status",
  "percent"}}. A backend with filters of its own carries them as "filters" (left out
  when it has none).
- A retry without a backoff gets 25 ms. minRetriesPerSecond = minRetryRate count/interval.
- A route or policy document that is not the canonical shape (a hand-edited store) is
  skipped (the policy falls back to the defaults) rather than raising.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from gossamer.control.authz_compiler import DEFAULT_MTLS, compile_authz, compile_mtls
from gossamer.control.state import Attached, MeshState, service_key, split_key
from gossamer.model.resources import MeshConfigSpec, TrafficPolicySpec, filter_field

PROTOCOL_VERSION = 1
DEFAULT_RETRY_BACKOFF = 0.025
_CATCH_ALL_PATH = {"type": "PathPrefix", "value": "/"}
_PATH_RANK = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}
# The model is the one source of the defaults DESIGN.md lists; read them from it once.
_POLICY_DEFAULTS: dict[str, Any] = TrafficPolicySpec.model_validate(
    {"targetRefs": [{"name": "any"}]}
).model_dump(mode="json", exclude_none=True)
_MESH_DEFAULTS: dict[str, Any] = MeshConfigSpec().model_dump(mode="json")


# "ms" before "m": model.common.duration_seconds tries "m" first and reads "30ms" as 30 min.
_DURATION_PART = re.compile(r"([0-9]+)(ms|h|m|s)")
_UNIT_MILLIS = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


@lru_cache(maxsize=4096)
def seconds(duration: str) -> float:
    """A validated Gateway API duration ('1m30s', '500ms') in seconds."""
    # Integer milliseconds, one division: 7ms is 0.007, not 7 * 0.001.
    return sum(int(n) * _UNIT_MILLIS[u] for n, u in _DURATION_PART.findall(duration)) / 1000


def _optional_seconds(duration: str | None) -> float | None:
    return None if duration is None else seconds(duration)


# --- mesh ------------------------------------------------------------------------------------


def compile_mesh(state: MeshState) -> dict[str, Any]:
    spec = state.mesh_spec or {}
    return {
        "outboundTrafficPolicy": spec.get(
            "outboundTrafficPolicy", _MESH_DEFAULTS["outboundTrafficPolicy"]
        ),
        **(state.trust or {}),  # the mesh CA's bundle and mode (security.mesh_section)
    }


# --- policy ----------------------------------------------------------------------------------


def _merged(defaults: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for name, value in given.items():
        default = defaults.get(name)
        if isinstance(default, dict) and isinstance(value, Mapping):
            out[name] = _merged(default, value)
        else:
            out[name] = value
    return out


def compile_policy(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A TrafficPolicy spec (None: no policy) -> ENTRY's "policy", defaults filled in."""
    p = _merged(_POLICY_DEFAULTS, spec or {})
    lb, timeouts, outlier = p["loadBalancer"], p["timeouts"], p["outlierDetection"]
    budget, min_rate = p["retryConstraint"]["budget"], p["retryConstraint"]["minRetryRate"]
    rate_interval = seconds(min_rate["interval"])
    # A zero interval would divide by zero; read it as "per second".
    rate = min_rate["count"] / rate_interval if rate_interval > 0 else float(min_rate["count"])
    hash_on = lb.get("hashOn")
    return {
        "lb": {
            "type": lb["type"],
            "defaultRTT": seconds(lb["defaultRTT"]),
            "decay": seconds(lb["decay"]),
            "hashOn": dict(hash_on) if hash_on else None,
        },
        "timeouts": {
            "connect": seconds(timeouts["connect"]),
            "request": seconds(timeouts["request"]),
            "idle": seconds(timeouts["idle"]),
        },
        "retryBudget": {
            "percent": budget["percent"],
            "interval": seconds(budget["interval"]),
            "minRetriesPerSecond": int(rate) if rate.is_integer() else rate,
        },
        "outlier": {
            "consecutiveErrors": outlier["consecutiveErrors"],
            "baseEjectionTime": seconds(outlier["baseEjectionTime"]),
            "maxEjectionPercent": outlier["maxEjectionPercent"],
        },
        "limits": dict(p["connectionLimits"]),
    }


_DEFAULT_POLICY = compile_policy(None)


# --- routes ----------------------------------------------------------------------------------


def _first_by_name(items: Iterable[Mapping[str, Any]], lower: bool) -> list[dict[str, Any]]:
    out, seen = [], set()
    for item in items:
        name = item["name"].lower() if lower else item["name"]
        if name in seen:
            continue
        seen.add(name)
        out.append({"type": item.get("type", "Exact"), "name": name, "value": item["value"]})
    return out


def _compile_match(match: Mapping[str, Any]) -> dict[str, Any]:
    path = match.get("path")
    return {
        "path": {"type": path.get("type", "PathPrefix"), "value": path.get("value", "/")}
        if path
        else dict(_CATCH_ALL_PATH),
        "headers": _first_by_name(match.get("headers") or (), lower=True),
        "queryParams": _first_by_name(match.get("queryParams") or (), lower=False),
        "method": match.get("method"),
    }


def _precedence(match: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """Gateway API match precedence; smaller sorts first."""
    path = match["path"]
    rank = _PATH_RANK.get(path["type"], len(_PATH_RANK))
    length = 0 if path["type"] == "Exact" else -len(path["value"])
    return (
        rank,
        length,
        0 if match["method"] else 1,
        -len(match["headers"]),
        -len(match["queryParams"]),
    )


def _ref_key(ref: Mapping[str, Any], namespace: str) -> str:
    return service_key(ref.get("namespace") or namespace, ref["name"])


def _compile_filter(flt: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    kind = flt["type"]
    if kind == "RequestMirror":
        mirror = flt["requestMirror"]
        target = {
            "service": _ref_key(mirror["backendRef"], namespace),
            "percent": mirror.get("percent", 100),
        }
        return {"type": kind, "requestMirror": target}
    if kind == "Fault":
        return {"type": kind, "fault": _compile_fault(flt["fault"])}
    field = filter_field(kind)
    return {"type": kind, field: flt[field]}


def _compile_fault(fault: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if fault.get("delay"):
        delay = fault["delay"]
        out["delay"] = {
            "seconds": seconds(delay["fixedDelay"]),
            "percent": delay.get("percent", 100),
        }
    if fault.get("abort"):
        abort = fault["abort"]
        out["abort"] = {"status": abort["httpStatus"], "percent": abort.get("percent", 100)}
    return out


def _session_persistence(given: Mapping[str, Any] | None) -> dict[str, str] | None:
    """{"header": "x-user-id"} or {"cookie": "session"}: the sticky key hashed to pick the
    weighted backend (header names lower-cased, as the sidecar compares them)."""
    if not given:
        return None
    name = given["sessionName"]
    if given.get("type", "Cookie") == "Header":
        return {"header": name.lower()}
    return {"cookie": name}


def _compile_backend(ref: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    backend: dict[str, Any] = {
        "service": _ref_key(ref, namespace),
        "labels": dict(ref.get("labels") or {}),
        "weight": ref.get("weight", 1),
    }
    if ref.get("filters"):
        backend["filters"] = [_compile_filter(f, namespace) for f in ref["filters"]]
    kind = ref.get("kind", "Service")
    if kind != "Service" or ref.get("group") not in (None, "", "core"):
        # Gateway API: a ref that names nothing valid keeps its share, answered 500.
        backend["invalid"] = f"backendRef kind {ref.get('group') or 'core'}/{kind} is not a Service"
    return backend


def _compile_rule(rule: Mapping[str, Any], namespace: str, parent: str) -> dict[str, Any]:
    """Everything of a (rule, match) pair that does not depend on the match."""
    filters = [_compile_filter(f, namespace) for f in rule.get("filters") or ()]
    refs = [ref for ref in rule.get("backendRefs") or () if ref.get("weight", 1) > 0]
    backends = [_compile_backend(ref, namespace) for ref in refs]
    if not rule.get("backendRefs") and not any(f["type"] == "RequestRedirect" for f in filters):
        backends = [{"service": parent, "labels": {}, "weight": 1}]
    timeouts = rule.get("timeouts") or {}
    retry = rule.get("retry")
    sticky = _session_persistence(rule.get("sessionPersistence"))
    return {
        **({"sessionPersistence": sticky} if sticky else {}),
        "backends": backends,
        "filters": filters,
        "timeouts": {
            "request": _optional_seconds(timeouts.get("request")),
            "backendRequest": _optional_seconds(timeouts.get("backendRequest")),
        },
        "retry": None
        if retry is None
        else {
            "attempts": retry.get("attempts", 2),
            "backoff": DEFAULT_RETRY_BACKOFF
            if retry.get("backoff") is None
            else seconds(retry["backoff"]),
            "codes": list(retry.get("codes", (502, 503, 504))),
        },
    }


def _route_pairs(
    route: Attached, route_index: int, parent: str
) -> list[tuple[tuple[int, ...], dict[str, Any]]]:
    route_key = service_key(route.namespace, route.name)
    pairs: list[tuple[tuple[int, ...], dict[str, Any]]] = []
    for rule_index, rule in enumerate(route.spec.get("rules") or ({},)):
        shared = _compile_rule(rule, route.namespace, parent)
        for match_index, raw in enumerate(rule.get("matches") or ({},)):
            match = _compile_match(raw)
            pair = {"route": route_key, "rule": rule_index, "match": match, **shared}
            pairs.append(((*_precedence(match), route_index, rule_index, match_index), pair))
    return pairs


def compile_routes(routes: Iterable[Attached], parent: str) -> list[dict[str, Any]]:
    """Every (rule, match) pair of `routes` (given oldest first), in precedence order."""
    keyed: list[tuple[tuple[int, ...], dict[str, Any]]] = []
    for route_index, route in enumerate(routes):
        try:
            # routes_for already sorts by (age, namespace, name): route_index stands in.
            keyed.extend(_route_pairs(route, route_index, parent))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # not the canonical shape (a hand-edited store): skip, never crash
    keyed.sort(key=lambda item: item[0])
    return [pair for _, pair in keyed]


# --- entries and views -----------------------------------------------------------------------


def compile_entry(state: MeshState, key: str) -> dict[str, Any]:
    """The ENTRY for one service key. Costs O(its instances, routes and policy)."""
    namespace, name = split_key(key)
    if not state.exists(key):
        return {
            "name": name,
            "namespace": namespace,
            "exists": False,
            "protocol": "HTTP",
            "endpoints": [],
            "routes": [],
            "policy": _DEFAULT_POLICY,
            "authz": [],
            "mtls": DEFAULT_MTLS,
        }
    declared = state.service_spec(key) or {}
    policy = state.policy_for(key)
    try:
        compiled_policy = compile_policy(policy.spec) if policy else _DEFAULT_POLICY
    except (KeyError, TypeError, ValueError, AttributeError):
        compiled_policy = _DEFAULT_POLICY  # not the canonical shape: defaults, never crash
    return {
        "name": name,
        "namespace": namespace,
        "exists": True,
        "protocol": declared.get("protocol", "HTTP"),
        "endpoints": state.healthy_endpoints(key),
        "routes": compile_routes(state.routes_for(key), key),
        "policy": compiled_policy,
        "authz": compile_authz(state, key),  # for the inbound sidecars of this service
        "mtls": compile_mtls(state, key),
    }


def needed_services(entry: Mapping[str, Any]) -> set[str]:
    """Service keys the entry's routes send to or mirror to: they must be in the view too."""
    keys = set()
    for route in entry["routes"]:
        for backend in route["backends"]:
            if "invalid" not in backend:
                keys.add(backend["service"])
        for flt in route["filters"]:
            if flt["type"] == "RequestMirror":
                keys.add(flt["requestMirror"]["service"])
    return keys


def compile_closure(
    state: MeshState, keys: Iterable[str], known: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Entries for `keys` and, transitively, every service they need that is not in `known`
    (entries the caller already holds, e.g. a proxy's current view)."""
    known = known or {}
    out: dict[str, dict[str, Any]] = {}
    pending = list(keys)
    while pending:
        key = pending.pop()
        if key in out:
            continue
        entry = out[key] = compile_entry(state, key)
        pending.extend(k for k in needed_services(entry) if k not in out and k not in known)
    return out


def compile_view(state: MeshState, keys: Iterable[str]) -> dict[str, Any]:
    """The first line of a proxy's stream: its full view, closure applied."""
    services = compile_closure(state, keys)
    return {
        "type": "snapshot",
        "protocol": PROTOCOL_VERSION,
        "version": state.revision,
        "mesh": compile_mesh(state),
        "services": {key: services[key] for key in sorted(services)},
    }


def encode_message(message: Any) -> bytes:
    """Compact, deterministic JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        message, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


encode_entry = encode_message
