"""The canary controller's I/O: read Canaries and metrics, decide, write route and status.

    runner = CanaryRunner(store, metrics, wall_clock, tick_seconds=1.0)
    tasks.create_task(runner.run())                 # in the server's TaskGroup
    await runner.command("default", "reviews", "abort")

Each decision writes the re-weighted HTTPRoute and the Canary's status in one store
transaction (compare-and-swap on both), so the route never disagrees with the status and a
control-plane restart resumes from whatever was last written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gossamer.control.canary.decide import (
    NOT_STARTED,
    TERMINAL,
    Action,
    Measured,
    Plan,
    decide,
)
from gossamer.control.canary.metrics import MetricsSource, subset_name
from gossamer.control.canary.routes import split_route
from gossamer.control.canary.status import progress_of, record_action
from gossamer.control.documents import plan_write
from gossamer.model import parse_document
from gossamer.model.common import API_VERSION
from gossamer.store.base import AlreadyExists, Conflict, NotFound, Op, Record, Store

log = logging.getLogger(__name__)
KIND = "Canary"
WRITE_ATTEMPTS = 3


class CanaryConflict(Exception):
    """The canary or its route kept changing under the controller; nothing was written."""


class CanaryRunner:
    def __init__(
        self,
        store: Store,
        metrics: Callable[[], MetricsSource | None],
        wall_clock: Callable[[], float],
        tick_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.metrics = metrics  # looked up per tick: telemetry may be wired in later
        self.wall_clock = wall_clock
        self.tick_seconds = tick_seconds
        self._lock = asyncio.Lock()  # one decision at a time: ticks and operator commands
        self.ticked = asyncio.Event()  # set after every tick (tests wait on it)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a store hiccup must not stop canaries for good
                log.exception("canary tick failed; retrying next tick")
            self.ticked.set()
            self.ticked.clear()
            await asyncio.sleep(self.tick_seconds)

    async def tick(self) -> None:
        records, _ = await self.store.list(KIND)
        for record in records:
            if progress_of(record.value.get("status"), _generation(record)).phase in TERMINAL:
                continue
            try:
                await self.step(record.namespace, record.name)
            except (CanaryConflict, NotFound):
                continue  # changed meanwhile: next tick sees the new version

    async def step(
        self, namespace: str, name: str, command: str | None = None
    ) -> tuple[dict[str, Any], Action]:
        """Decide once for one canary and write the result. CommandRefused passes through."""
        async with self._lock:
            for _ in range(WRITE_ATTEMPTS):
                record = await self.store.get(KIND, namespace, name)
                if record is None:
                    raise NotFound(f"{KIND} {namespace}/{name}")
                try:
                    return await self._decide_and_write(record, command)
                except (Conflict, AlreadyExists, NotFound):
                    continue
        raise CanaryConflict(f"{KIND} {namespace}/{name} kept changing; retry")

    async def _decide_and_write(
        self, record: Record, command: str | None
    ) -> tuple[dict[str, Any], Action]:
        spec = record.value["spec"]
        generation = _generation(record)
        status = record.value.get("status") or {}
        plan = Plan.from_spec(spec)
        progress = progress_of(status, generation)
        now = self.wall_clock()
        measured = None
        if progress is not NOT_STARTED and command is None:
            measured = self._measure(record.namespace, spec, max(now - progress.step_started, 0))
        action = decide(plan, progress, measured, now, command)
        new_status = record_action(status, plan, action, measured, generation, now)
        if action.kind == "wait" and _same_but_time(status, new_status):
            return new_status, action  # nothing new to tell: no store write
        ops = [Op("put", *record.key, {**record.value, "status": new_status}, record.mod_revision)]
        if action.changes_route:
            ops.insert(0, await self._route_op(record.namespace, spec, action, now))
        await self.store.txn(ops)
        if action.kind != "wait":
            log.info(
                "canary %s/%s: %s: %s", record.namespace, record.name, action.kind, action.reason
            )
        return new_status, action

    def _measure(self, namespace: str, spec: dict[str, Any], window: float) -> Measured | None:
        source = self.metrics()
        if source is None:
            return None
        service = f"{namespace}/{spec['service']}"
        return Measured(
            canary=source.subset_stats(service, subset_name(spec["canary"]), window),
            baseline=source.subset_stats(service, subset_name(spec["baseline"]), window),
        )

    async def _route_op(
        self, namespace: str, spec: dict[str, Any], action: Action, now: float
    ) -> Op:
        weight = action.canary_weight or 0
        route_name = spec.get("route") or spec["service"]
        existing = await self.store.get("HTTPRoute", namespace, route_name)
        weights = [(spec["baseline"], 100 - weight), (spec["canary"], weight)]
        return route_write(namespace, route_name, spec["service"], weights, existing, now)


def route_write(
    namespace: str,
    route_name: str,
    service: str,
    weights: list[tuple[dict[str, str], int]],
    existing: Record | None,
    now: float,
) -> Op:
    """The store op writing `weights` into the route (created if absent); SplitError or
    ValidationFailed when the result would not be a valid route."""
    old = existing.value if existing is not None else None
    new_spec = split_route(old["spec"] if old else None, service, namespace, weights)
    meta: dict[str, Any] = {"name": route_name, "namespace": namespace}
    if old:
        meta.update(
            {k: old["metadata"][k] for k in ("labels", "annotations") if k in old["metadata"]}
        )
    raw = {"apiVersion": API_VERSION, "kind": "HTTPRoute", "metadata": meta, "spec": new_spec}
    resource = parse_document(raw, f"HTTPRoute {namespace}/{route_name}")
    planned = plan_write(resource, existing, None, now)
    return Op(
        "put", *resource.key, value=planned.value, expected_revision=planned.expected_revision
    )


def _generation(record: Record) -> int:
    return int(record.value.get("metadata", {}).get("generation") or 1)


def _same_but_time(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(status: dict[str, Any]) -> dict[str, Any]:
        measured = {k: v for k, v in (status.get("measured") or {}).items() if k != "at"}
        return {**status, "measured": measured}

    return strip(old) == strip(new)
