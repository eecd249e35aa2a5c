"""Conflicting HTTPRoute matches, reported in the losing route's status. Pure.

Two (rule, match) pairs on one parent service with an identical match (same path, method,
headers and query parameters after the compiler's normalisation) conflict: the sidecar
takes the first in precedence order, so the other never applies. As the Gateway API
specifies, the older route wins, then the one first by namespace/name; inside one route the
earlier rule (and match) wins. The loser is told which pair wins, naming both fields.
Everything is pure but `write_conflicts`, which reads the stored routes for a write.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from math import inf
from typing import Any

from gossamer.control.compiler import _compile_match
from gossamer.control.state import Age, service_key
from gossamer.model.parse import Resource
from gossamer.store.base import Record, Store


@dataclass(frozen=True)
class RouteDoc:
    """An HTTPRoute as the conflict check needs it: where it sits in conflict order."""

    namespace: str
    name: str
    age: Age  # (creation seconds, create revision): older first
    spec: dict[str, Any]

    @property
    def order(self) -> tuple[Age, str, str]:
        return (self.age, self.namespace, self.name)


def _parents(route: RouteDoc) -> set[str]:
    return {
        service_key(ref.get("namespace") or route.namespace, ref["name"])
        for ref in route.spec.get("parentRefs") or ()
        if ref.get("kind", "Service") == "Service"
    }


def _pairs(route: RouteDoc) -> Iterator[tuple[str, str]]:
    """(field path, canonical match) of every (rule, match) pair, in rule and match order."""
    for r, rule in enumerate(route.spec.get("rules") or ({},)):
        for m, match in enumerate(rule.get("matches") or ({},)):
            canonical = json.dumps(_compile_match(match), sort_keys=True)
            yield f"spec.rules[{r}].matches[{m}]", canonical


def conflict_warnings(route: RouteDoc, others: Iterable[RouteDoc]) -> list[str]:
    """Warnings for the pairs of `route` that lose to an identical match on a shared parent
    (of `others`, or earlier in `route` itself). Others with the same name are ignored."""
    parents = _parents(route)
    winners: dict[tuple[str, str], tuple[tuple[Age, str, str], str]] = {}
    for other in others:
        if (other.namespace, other.name) == (route.namespace, route.name):
            continue
        shared = parents & _parents(other)
        if not shared or other.order > route.order:
            continue  # a newer route loses to this one: its own status says so
        label = f"HTTPRoute {other.namespace}/{other.name}"
        for field, canonical in _pairs(other):
            for parent in shared:
                best = winners.get((parent, canonical))
                if best is None or other.order < best[0]:
                    winners[(parent, canonical)] = (other.order, f"{label} {field}")
    warnings: list[str] = []
    earlier: dict[str, str] = {}
    for field, canonical in _pairs(route):
        for parent in sorted(parents):
            winner = winners.get((parent, canonical))
            if winner is not None:
                warnings.append(
                    f"{field} conflicts on parent {parent} with an identical match of "
                    f"{winner[1]}, which wins (older route first, then namespace/name): "
                    "this match never applies"
                )
        if canonical in earlier:
            warnings.append(
                f"{field} is identical to {earlier[canonical]} of this route, which wins "
                "(earlier rule first): this match never applies"
            )
        else:
            earlier[canonical] = field
    return warnings


def age_of(metadata: dict[str, Any], create_revision: int) -> Age:
    """As state.py orders routes: creationTimestamp seconds, then create revision."""
    stamp = metadata.get("creationTimestamp")
    try:
        seconds = datetime.fromisoformat(stamp).timestamp() if isinstance(stamp, str) else inf
    except ValueError:
        seconds = inf
    return (seconds, create_revision)


def apply_conflicts(
    applied: list[RouteDoc], stored: Iterable[RouteDoc]
) -> dict[tuple[str, str], list[str]]:
    """Conflict warnings of each applied route against the stored ones and each other
    (an applied route replaces its stored version)."""
    mine = {(r.namespace, r.name) for r in applied}
    everyone = [r for r in stored if (r.namespace, r.name) not in mine] + applied
    # Indexed by parent, so a bulk apply compares each route only with its parents' routes.
    by_parent: dict[str, list[RouteDoc]] = {}
    for r in everyone:
        for parent in _parents(r):
            by_parent.setdefault(parent, []).append(r)
    out = {}
    for r in applied:
        near = {id(o): o for parent in _parents(r) for o in by_parent.get(parent, ())}
        out[(r.namespace, r.name)] = conflict_warnings(r, near.values())
    return out


async def write_conflicts(
    store: Store,
    resources: list[Resource],
    stored: Mapping[tuple[str, str, str], Record],
    now: float,
) -> dict[tuple[str, str], list[str]]:
    """Conflict warnings of the HTTPRoutes among `resources` about to be written at wall
    time `now` (`stored`: their current records), against every stored HTTPRoute."""
    applied = []
    for i, res in enumerate(resources):
        if res.kind != "HTTPRoute":
            continue
        _, ns, name = res.key
        old = stored.get(res.key)
        # A new route is the newest: created now, after everything stored (in write order).
        age = (
            age_of(old.value.get("metadata") or {}, old.create_revision)
            if old
            else (now, 2**62 + i)
        )
        applied.append(RouteDoc(ns, name, age, res.to_doc()["spec"]))
    if not applied:
        return {}
    records, _ = await store.list("HTTPRoute")
    others = (
        RouteDoc(
            r.namespace,
            r.name,
            age_of(r.value.get("metadata") or {}, r.create_revision),
            r.value.get("spec") or {},
        )
        for r in records
    )
    return apply_conflicts(applied, others)
