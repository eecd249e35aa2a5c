"""Traffic endpoints: canary start/status/commands, weight splits, and a service's compiled entry.

| POST /api/v1/namespaces/{ns}/canaries/{name}/start              | body {"spec": CanarySpec} |
| GET  /api/v1/namespaces/{ns}/canaries/{name}/status             | the Canary document       |
| POST /api/v1/namespaces/{ns}/canaries/{name}/{promote|abort|pause|resume}              |
| POST /api/v1/namespaces/{ns}/services/{name}/split   | {"weights": {"v1": 90, "v2": 10}, |
|                                                      |  "label": "version", "waitSeconds"}|
| GET  /api/v1/snapshot/namespaces/{ns}/services/{name} | the snapshot line a proxy       |
|                                                      | watching only this service gets |
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gossamer.control.apply_api import MAX_WAIT_SECONDS, SyncWaiter
from gossamer.control.canary.decide import COMMANDS, TERMINAL, CommandRefused
from gossamer.control.canary.routes import SplitError
from gossamer.control.canary.runner import KIND, CanaryConflict, CanaryRunner, route_write
from gossamer.control.canary.status import progress_of
from gossamer.control.compiler import compile_view
from gossamer.control.documents import plan_write, to_api
from gossamer.control.errors import ApiError, json_response, read_json_object
from gossamer.control.state import MeshState
from gossamer.model import FieldError, ValidationFailed, parse_document
from gossamer.model.common import API_VERSION, check_dns_label, check_labels
from gossamer.store.base import AlreadyExists, Conflict, NotFound, Op, Store

StateReader = Callable[[], Awaitable[MeshState]]  # the mesh state, caught up with the store


def _name(request: web.Request, key: str) -> str:
    value = request.match_info[key]
    try:
        return check_dns_label(value)
    except ValueError as exc:
        raise ApiError(400, f"{key} {value!r}: {exc}") from None


def _invalid(exc: ValidationFailed) -> ApiError:
    return ApiError(422, f"{len(exc.errors)} error(s): {exc.errors[0].message}", exc.errors)


START_ATTEMPTS = 5


class CanaryApi:
    def __init__(
        self,
        store: Store,
        runner: CanaryRunner,
        wait_for_sync: SyncWaiter,
        state: StateReader,
        wall_clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.runner = runner
        self.wait_for_sync = wait_for_sync
        self.state = state
        self.wall_clock = wall_clock

    def routes(self) -> list[web.RouteDef]:
        one = "/api/v1/namespaces/{ns}/canaries/{name}"
        return [
            web.post(one + "/start", self.start),
            web.get(one + "/status", self.status),
            *(web.post(f"{one}/{command}", self.command) for command in COMMANDS),
            web.post("/api/v1/namespaces/{ns}/services/{name}/split", self.split),
            web.get("/api/v1/snapshot/namespaces/{ns}/services/{name}", self.snapshot),
        ]

    async def start(self, request: web.Request) -> web.Response:
        ns, name = _name(request, "ns"), _name(request, "name")
        body = await read_json_object(request)
        raw = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": ns},
            "spec": body.get("spec"),
        }
        try:
            resource = parse_document(raw, f"{KIND} {ns}/{name}")
        except ValidationFailed as exc:
            raise _invalid(exc) from None
        spec = resource.to_doc()["spec"]
        if not (await self.state()).exists(f"{ns}/{spec['service']}"):
            raise ApiError(
                422,
                f"service {ns}/{spec['service']} does not exist (no Service and no instances)",
                [
                    FieldError(
                        f"{KIND} {ns}/{name}", "spec.service", "no such service", spec["service"]
                    )
                ],
            )
        # The route must accept the split before anything is written.
        await self._check_route(ns, spec)
        # The runner may write the old run's status between our read and our write: read
        # again and retry a few times before reporting a conflict.
        for _attempt in range(START_ATTEMPTS):
            existing = await self.store.get(KIND, ns, name)
            if existing is not None:
                phase = progress_of(existing.value.get("status"), _generation(existing.value)).phase
                if phase and phase not in TERMINAL:
                    raise ApiError(409, f"canary {ns}/{name} is {phase}: promote or abort it first")
            planned = plan_write(resource, existing, None, self.wall_clock())
            fresh = {**planned.value, "status": {}}  # a new run, whatever ran before
            try:
                await self.store.txn([Op("put", *resource.key, fresh, planned.expected_revision)])
            except (Conflict, AlreadyExists, NotFound):
                continue
            return await self._run(ns, name, None)
        raise ApiError(409, f"canary {ns}/{name} kept changing meanwhile; retry")

    async def _check_route(self, ns: str, spec: dict[str, Any]) -> None:
        route_name = spec.get("route") or spec["service"]
        existing = await self.store.get("HTTPRoute", ns, route_name)
        weights = [(spec["baseline"], 100), (spec["canary"], 0)]
        try:
            route_write(ns, route_name, spec["service"], weights, existing, self.wall_clock())
        except SplitError as exc:
            raise ApiError(409, f"HTTPRoute {ns}/{route_name}: {exc}") from None
        except ValidationFailed as exc:
            raise _invalid(exc) from None

    async def status(self, request: web.Request) -> web.Response:
        ns, name = _name(request, "ns"), _name(request, "name")
        record = await self.store.get(KIND, ns, name)
        if record is None:
            raise ApiError(404, f"canary {ns}/{name} not found")
        return json_response(to_api(record))

    async def command(self, request: web.Request) -> web.Response:
        ns, name = _name(request, "ns"), _name(request, "name")
        command = request.path.rsplit("/", 1)[1]
        return await self._run(ns, name, command)

    async def _run(self, ns: str, name: str, command: str | None) -> web.Response:
        try:
            await self.runner.step(ns, name, command)
        except NotFound:
            raise ApiError(404, f"canary {ns}/{name} not found") from None
        except CommandRefused as exc:
            raise ApiError(409, f"canary {ns}/{name}: {exc}") from None
        except CanaryConflict as exc:
            raise ApiError(409, str(exc)) from None
        except (SplitError, ValidationFailed) as exc:
            raise ApiError(409, f"canary {ns}/{name}: cannot write its route: {exc}") from None
        record = await self.store.get(KIND, ns, name)
        if record is None:
            raise ApiError(404, f"canary {ns}/{name} was deleted meanwhile")
        return json_response(to_api(record))

    async def split(self, request: web.Request) -> web.Response:
        ns, service = _name(request, "ns"), _name(request, "name")
        body = await read_json_object(request)
        label = body.get("label", "version")
        weights = _parse_weights(body.get("weights"), label)
        route_name = body.get("route") or service
        wait = body.get("waitSeconds")
        if not isinstance(route_name, str):
            raise ApiError(400, "route must be a string (an HTTPRoute name)")
        _name_check(route_name, "route")
        if wait is not None and (
            isinstance(wait, bool)
            or not isinstance(wait, int | float)
            or not 0 <= wait <= MAX_WAIT_SECONDS
        ):
            raise ApiError(400, f"waitSeconds must be a number from 0 to {MAX_WAIT_SECONDS:g}")
        if not (await self.state()).exists(f"{ns}/{service}"):
            raise ApiError(
                404, f"service {ns}/{service} does not exist (no Service and no instances)"
            )
        await self._refuse_if_canary_runs(ns, service)
        existing = await self.store.get("HTTPRoute", ns, route_name)
        try:
            op = route_write(ns, route_name, service, weights, existing, self.wall_clock())
            records = await self.store.txn([op])
        except SplitError as exc:
            raise ApiError(409, f"HTTPRoute {ns}/{route_name}: {exc}") from None
        except ValidationFailed as exc:
            raise _invalid(exc) from None
        except (Conflict, AlreadyExists):
            raise ApiError(409, f"HTTPRoute {ns}/{route_name} changed meanwhile; retry") from None
        revision = records[0].mod_revision
        out: dict[str, Any] = {"route": to_api(records[0]), "revision": revision}
        if wait is not None:
            out["sync"] = await self.wait_for_sync(revision, float(wait))
        return json_response(out)

    async def _refuse_if_canary_runs(self, ns: str, service: str) -> None:
        records, _ = await self.store.list(KIND, ns)
        for record in records:
            if record.value.get("spec", {}).get("service") != service:
                continue
            phase = progress_of(record.value.get("status"), _generation(record.value)).phase
            if phase and phase not in TERMINAL:
                raise ApiError(
                    409,
                    f"canary {ns}/{record.name} is {phase} on {ns}/{service}: "
                    "promote or abort it before splitting by hand",
                )

    async def snapshot(self, request: web.Request) -> web.Response:
        ns, service = _name(request, "ns"), _name(request, "name")
        state = await self.state()
        key = f"{ns}/{service}"
        if not state.exists(key):
            raise ApiError(404, f"service {key} does not exist (no Service and no instances)")
        return json_response(compile_view(state, [key]))


def _name_check(value: str, field: str) -> None:
    try:
        check_dns_label(value)
    except ValueError as exc:
        raise ApiError(400, f"{field} {value!r}: {exc}") from None


def _parse_weights(raw: Any, label: str) -> list[tuple[dict[str, str], int]]:
    """{"v1": 90, "v2": 10} -> [({"version": "v1"}, 90), ...]; 400 naming the bad entry."""
    if not isinstance(label, str):
        raise ApiError(400, "label must be a string (a label key such as 'version')")
    if not isinstance(raw, dict) or not raw:
        raise ApiError(400, 'weights must be an object like {"v1": 90, "v2": 10}')
    out = []
    for value, weight in raw.items():
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
        ):
            raise ApiError(400, f"weights.{value}: {weight!r} is not a number")
        if weight < 0 or weight != int(weight):
            raise ApiError(400, f"weights.{value}: {weight!r} must be a whole number >= 0")
        try:
            labels = check_labels({label: value})
        except ValueError as exc:
            raise ApiError(400, f"weights.{value}: {exc}") from None
        out.append((labels, int(weight)))
    if not any(w > 0 for _, w in out):
        raise ApiError(400, "weights sum to zero: at least one must be positive")
    return out


def _generation(value: dict[str, Any]) -> int:
    return int(value.get("metadata", {}).get("generation") or 1)
