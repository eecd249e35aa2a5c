"""Authorization policy: the sidecar's lean form of ENTRY["authz"] and Istio's evaluation.
Pure, standard library only; the CLI's `gossamer explain authz` runs the same code.

    policies = parse_policies(entry["authz"], "services['default/reviews'].authz")
    decision = evaluate(policies, own_labels, principal, "GET", "/admin", headers)

Istio's semantics: no policy selects the workload -> allow. Any DENY rule that matches ->
deny (DENY wins). Else, no ALLOW policy selects the workload -> allow; some ALLOW rule
matches -> allow; else deny (an ALLOW policy without rules allows nothing). A rule matches
when one of its `from` sources, one of its `to` operations and every `when` condition
match (a missing list matches anything). A rule naming something the sidecar cannot
evaluate (a condition key such as `source.ip`, or a field from a newer control plane)
matches when it is in a DENY policy (fails closed) and never when it is in an ALLOW one.

Strings match as Istio's: exact, `prefix*`, `*suffix`, or `*` (any non-empty value).
Principals are SPIFFE IDs with or without `spiffe://` (`cluster.local/ns/default/sa/web`);
`namespaces` and `services` (`ns/name`) are read from the caller's principal. Paths are
the normalised path (proxy/paths.py), compared case-sensitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SCHEME = "spiffe://"
_SOURCE_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces", "services")
_OPERATION_FIELDS = ("paths", "notPaths", "methods", "notMethods")
HeaderList = Sequence[tuple[bytes, bytes]]  # lower-case names, as httptools gives them


class Decision:
    __slots__ = ("allowed", "code", "policy", "reason", "rule")

    def __init__(
        self, allowed: bool, code: str, reason: str, policy: str = "", rule: int = -1
    ) -> None:
        self.allowed = allowed
        self.code = code  # bounded: a metric label (see CODES)
        self.reason = reason  # for people: which policy decided and why
        self.policy = policy  # "ns/name", "" when no policy decided
        self.rule = rule  # index in the policy's rules, -1 when none

    def __repr__(self) -> str:
        return f"Decision({self.allowed}, {self.code!r}, policy={self.policy!r}, rule={self.rule})"


ALLOWED_NO_POLICY = "no_policy"
ALLOWED_NO_ALLOW_POLICY = "no_allow_policy"
ALLOWED_BY_RULE = "allow_rule"
DENIED_BY_RULE = "deny_rule"
DENIED_UNEVALUABLE = "deny_unevaluable"
DENIED_NO_MATCH = "no_allow_match"


class Rule:
    __slots__ = ("conditions", "operations", "sources", "unsupported")

    def __init__(
        self,
        sources: tuple[dict[str, tuple[str, ...]], ...],
        operations: tuple[dict[str, tuple[str, ...]], ...],
        conditions: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...],
        unsupported: str,
    ) -> None:
        self.sources = sources
        self.operations = operations
        self.conditions = conditions  # (key, values, notValues)
        self.unsupported = unsupported  # what the sidecar cannot evaluate, "" if nothing


class Policy:
    __slots__ = ("action", "name", "rules", "selector")

    def __init__(
        self, name: str, action: str, selector: dict[str, str], rules: tuple[Rule, ...]
    ) -> None:
        self.name = name
        self.action = action
        self.selector = selector  # instance labels the workload must carry
        self.rules = rules

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.selector.items())


# --- evaluation --------------------------------------------------------------------------------


def evaluate(
    policies: Iterable[Policy],
    labels: Mapping[str, str],
    principal: str | None,
    method: str,
    path: str,
    headers: HeaderList = (),
) -> Decision:
    """Decide one request to a workload carrying `labels` from caller `principal`
    (None or "" when the connection carries no verified identity)."""
    denies, allows = select(policies, labels)
    return decide(denies, allows, principal, method, path, headers)


def select(
    policies: Iterable[Policy], labels: Mapping[str, str]
) -> tuple[tuple[Policy, ...], tuple[Policy, ...]]:
    """The (DENY, ALLOW) policies selecting a workload: once per snapshot on the hot path."""
    selected = [p for p in policies if p.selects(labels)]
    return (
        tuple(p for p in selected if p.action == "DENY"),
        tuple(p for p in selected if p.action != "DENY"),
    )


def decide(
    denies: Sequence[Policy],
    allows: Sequence[Policy],
    principal: str | None,
    method: str,
    path: str,
    headers: HeaderList = (),
) -> Decision:
    """evaluate() for policies already selected (see select())."""
    if not denies and not allows:
        return Decision(True, ALLOWED_NO_POLICY, "no AuthorizationPolicy selects this workload")
    request = _Request(principal or "", method, path, headers)
    for policy in denies:
        for index, rule in enumerate(policy.rules):
            if rule.unsupported:
                return Decision(
                    False,
                    DENIED_UNEVALUABLE,
                    f"DENY policy {policy.name} rule {index} uses {rule.unsupported}, which the "
                    "sidecar cannot evaluate: denied (fails closed)",
                    policy.name,
                    index,
                )
            if _rule_matches(rule, request):
                return Decision(
                    False,
                    DENIED_BY_RULE,
                    f"DENY policy {policy.name} rule {index} matches",
                    policy.name,
                    index,
                )
    if not allows:
        return Decision(True, ALLOWED_NO_ALLOW_POLICY, "no DENY rule matches and no ALLOW policy")
    for policy in allows:
        for index, rule in enumerate(policy.rules):
            if not rule.unsupported and _rule_matches(rule, request):
                return Decision(
                    True,
                    ALLOWED_BY_RULE,
                    f"ALLOW policy {policy.name} rule {index} matches",
                    policy.name,
                    index,
                )
    names = ", ".join(p.name for p in allows)
    return Decision(
        False, DENIED_NO_MATCH, f"ALLOW policies select this workload ({names}); no rule matches"
    )


class _Request:
    __slots__ = ("_workload", "headers", "method", "path", "principal")

    def __init__(self, principal: str, method: str, path: str, headers: HeaderList) -> None:
        if principal.startswith(SCHEME):
            principal = principal[len(SCHEME) :]
        self.principal = principal
        self._workload: tuple[str, str] | None = None  # parsed when a rule asks
        self.method = method
        self.path = path
        self.headers = headers

    @property
    def namespace(self) -> str:
        if self._workload is None:
            self._workload = _workload(self.principal)
        return self._workload[0]

    @property
    def service(self) -> str:
        if self._workload is None:
            self._workload = _workload(self.principal)
        return self._workload[1]

    def header(self, name: str) -> str | None:
        key = name.lower().encode("latin-1")
        values = [v.decode("latin-1") for n, v in self.headers if n == key]
        return ", ".join(values) if values else None


def _workload(principal: str) -> tuple[str, str]:
    """'td/ns/<ns>/sa/<service>' -> (ns, 'ns/service'); ('', '') for any other shape."""
    parts = principal.split("/")
    if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa" and parts[2] and parts[4]:
        return parts[2], f"{parts[2]}/{parts[4]}"
    return "", ""


def match(pattern: str, value: str) -> bool:
    if pattern == "*":
        return bool(value)
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any(patterns: tuple[str, ...], value: str) -> bool:
    for pattern in patterns:  # a loop, not any(<genexpr>): this runs per request
        if match(pattern, value):
            return True
    return False


def _field(spec: dict[str, tuple[str, ...]], positive: str, negative: str, value: str) -> bool:
    wanted, unwanted = spec.get(positive), spec.get(negative)
    if wanted is not None and not _any(wanted, value):
        return False
    return unwanted is None or not _any(unwanted, value)


def _source_matches(s: dict[str, tuple[str, ...]], r: _Request) -> bool:
    if not _field(s, "principals", "notPrincipals", r.principal):
        return False
    if ("namespaces" in s or "notNamespaces" in s) and not _field(
        s, "namespaces", "notNamespaces", r.namespace
    ):
        return False
    services = s.get("services")
    return services is None or _any(services, r.service)


def _operation_matches(o: dict[str, tuple[str, ...]], r: _Request) -> bool:
    return _field(o, "paths", "notPaths", r.path) and _field(o, "methods", "notMethods", r.method)


def _condition_matches(
    key: str, values: tuple[str, ...], not_values: tuple[str, ...], r: _Request
) -> bool:
    if key == "source.principal":
        value: str | None = r.principal or None
    elif key == "source.namespace":
        value = r.namespace or None
    else:  # request.headers[name]: parse_policies lets no other key through
        value = r.header(key[16:-1])
    if values and (value is None or not _any(values, value)):
        return False
    return not (not_values and value is not None and _any(not_values, value))


def _rule_matches(rule: Rule, r: _Request) -> bool:
    if rule.sources:
        for source in rule.sources:
            if _source_matches(source, r):
                break
        else:
            return False
    if rule.operations:
        for operation in rule.operations:
            if _operation_matches(operation, r):
                break
        else:
            return False
    for key, values, not_values in rule.conditions:
        if not _condition_matches(key, values, not_values, r):
            return False
    return True


# --- the wire form (docs/protocol.md, ENTRY["authz"]) -------------------------------------------

_EVALUABLE_KEYS = ("source.principal", "source.namespace")
_PRINCIPALS = ("principals", "notPrincipals")


def parse_policies(wire: Any, field: str) -> tuple[Policy, ...]:
    """ENTRY["authz"] -> policies. Raises ValueError naming the field for a malformed list;
    fields this sidecar does not know make their rule unevaluable instead (see module doc)."""
    if wire is None:
        return ()
    if not isinstance(wire, list):
        raise ValueError(f"{field}: expected a list, got {type(wire).__name__}")
    return tuple(_policy(raw, f"{field}[{i}]") for i, raw in enumerate(wire))


def _policy(raw: Any, field: str) -> Policy:
    obj = _mapping(raw, field)
    name = obj.get("name")
    action = obj.get("action")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{field}.name: expected a non-empty string, got {name!r}")
    if action not in ("ALLOW", "DENY"):
        raise ValueError(f"{field}.action: {action!r} is not one of 'ALLOW', 'DENY'")
    selector = _mapping(obj.get("selector") or {}, f"{field}.selector")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in selector.items()):
        raise ValueError(f"{field}.selector: expected a map of strings")
    rules = _list(obj.get("rules") or [], f"{field}.rules")
    return Policy(
        name,
        action,
        dict(selector),
        tuple(_rule(r, f"{field}.rules[{i}]") for i, r in enumerate(rules)),
    )


def _rule(raw: Any, field: str) -> Rule:
    obj = _mapping(raw, field)
    unsupported = [f"field {k!r}" for k in obj if k not in ("from", "to", "when")]
    sources = []
    for i, s in enumerate(_list(obj.get("from") or [], f"{field}.from")):
        spec, unknown = _strings(s, _SOURCE_FIELDS, f"{field}.from[{i}]")
        sources.append(spec)
        unsupported += unknown
    operations = []
    for i, o in enumerate(_list(obj.get("to") or [], f"{field}.to")):
        spec, unknown = _strings(o, _OPERATION_FIELDS, f"{field}.to[{i}]")
        operations.append(spec)
        unsupported += unknown
    conditions = []
    for i, c in enumerate(_list(obj.get("when") or [], f"{field}.when")):
        cf = f"{field}.when[{i}]"
        spec, unknown = _strings(c, ("values", "notValues"), cf, extra=("key",))
        key = _mapping(c, cf).get("key")
        if not isinstance(key, str):
            raise ValueError(f"{cf}.key: expected a string, got {key!r}")
        is_header = key.startswith("request.headers[") and key.endswith("]") and len(key) > 17
        if not is_header and key not in _EVALUABLE_KEYS:
            unknown.append(f"condition {key!r}")
        unsupported += unknown
        values, not_values = spec.get("values", ()), spec.get("notValues", ())
        if key == "source.principal":
            values, not_values = tuple(map(_bare, values)), tuple(map(_bare, not_values))
        conditions.append((key, values, not_values))
    return Rule(tuple(sources), tuple(operations), tuple(conditions), ", ".join(unsupported))


def _strings(
    raw: Any, known: tuple[str, ...], field: str, extra: tuple[str, ...] = ()
) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    obj = _mapping(raw, field)
    out: dict[str, tuple[str, ...]] = {}
    unknown = []
    for key, value in obj.items():
        if key in extra:
            continue
        if key not in known:
            unknown.append(f"field {key!r}")
            continue
        items = _list(value, f"{field}.{key}")
        if not all(isinstance(v, str) and v for v in items):
            raise ValueError(f"{field}.{key}: expected non-empty strings")
        if items:
            out[key] = tuple(_bare(v) for v in items) if key in _PRINCIPALS else tuple(items)
    return out, unknown


def _bare(principal: str) -> str:
    return principal[len(SCHEME) :] if principal.startswith(SCHEME) else principal


def _mapping(raw: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{field}: expected an object, got {type(raw).__name__}")
    return raw


def _list(raw: Any, field: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ValueError(f"{field}: expected a list, got {type(raw).__name__}")
    return raw
