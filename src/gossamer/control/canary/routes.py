"""Weights over a service's subsets, written into its HTTPRoute. Pure.

    spec = split_route(route_spec_or_None, "reviews", [({"version": "v1"}, 90), ...])

Only the route's *default* rules are re-weighted: rules with no header, query or method
match (a path match is fine), no redirect, and every backendRef naming the service itself.
Rules pinned by a match (an A/B rule sending `x-beta: 1` to v2) are left as they are, so a
split or a canary never undoes them. A route that does not exist yet is created with one
catch-all rule.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

Weights = Sequence[tuple[dict[str, str], int]]


class SplitError(ValueError):
    """The route has no rule a split may re-weight (message names the route)."""


def _names_service(ref: dict[str, Any], service: str, namespace: str) -> bool:
    return (
        ref.get("kind", "Service") == "Service"
        and ref.get("name") == service
        and (ref.get("namespace") or namespace) == namespace
    )


def is_default_rule(rule: dict[str, Any], service: str, namespace: str) -> bool:
    for match in rule.get("matches") or ():
        if match.get("headers") or match.get("queryParams") or match.get("method"):
            return False
    if any(f.get("type") == "RequestRedirect" for f in rule.get("filters") or ()):
        return False
    return all(_names_service(ref, service, namespace) for ref in rule.get("backendRefs") or ())


def backend_refs(service: str, weights: Weights) -> list[dict[str, Any]]:
    return [
        {"name": service, "labels": dict(labels), "weight": weight} for labels, weight in weights
    ]


def split_route(
    spec: dict[str, Any] | None, service: str, namespace: str, weights: Weights
) -> dict[str, Any]:
    """The route spec with its default rules sending `weights` over subsets of `service`."""
    if not any(weight > 0 for _, weight in weights):
        raise SplitError("weights sum to zero: at least one must be positive")
    refs = backend_refs(service, weights)
    if spec is None:
        return {"parentRefs": [{"name": service}], "rules": [{"backendRefs": refs}]}
    new = copy.deepcopy(spec)
    rules = new.get("rules") or []
    touched = 0
    for rule in rules:
        if is_default_rule(rule, service, namespace):
            rule["backendRefs"] = copy.deepcopy(refs)
            touched += 1
    if not touched:
        raise SplitError(
            "no rule of the route sends default traffic to the service (every rule has a "
            "header, query or method match, a redirect, or another backend)"
        )
    return new


def current_weights(
    spec: dict[str, Any] | None, service: str, namespace: str
) -> list[tuple[dict[str, str], int]]:
    """The subsets and weights of the first default rule (empty: no such rule)."""
    for rule in (spec or {}).get("rules") or ():
        if is_default_rule(rule, service, namespace):
            return [
                (dict(ref.get("labels") or {}), int(ref.get("weight", 1)))
                for ref in rule.get("backendRefs") or ()
            ]
    return []
