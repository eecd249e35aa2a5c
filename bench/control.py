"""Control-plane benchmark: bulk apply, compile time, change-to-last-ACK, memory per stream."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.control_plane import ControlPlane, api, start_control
from bench.procs import ProcessSet, cpu_count, process_tree, tree_rss_mib
from bench.stats import median, percentile
from bench.subscribers import Fleet, Subscriber, watch_lists

CONTROL_CORE = 0
DRIVER_CORE = 1
NAMESPACE = "default"
SUBSCRIBER_SERVICE = "bench-sub"


@dataclass(frozen=True)
class ControlSettings:
    services: int
    instances_per_service: int
    batch: int  # documents per apply request
    subscribers: tuple[int, ...]  # one fleet of each size, in turn
    watch_per_subscriber: int
    changes: int
    compile_repeats: int


FULL = ControlSettings(1000, 10, 1000, (1000, 5000), 10, 20, 20)
QUICK = ControlSettings(100, 10, 1000, (50,), 10, 3, 3)


def service_name(i: int) -> str:
    return f"svc-{i:04d}"


def service_doc(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "Service",
        "metadata": {"name": service_name(i), "namespace": NAMESPACE},
        "spec": {"ports": [{"port": 8080}]},
    }


def instance_doc(service: str, index: int, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "Instance",
        "metadata": {"name": f"{service}-{index}", "namespace": NAMESPACE},
        # A long lease: no health flapping while the bench runs.
        "spec": {"service": service, "address": "127.0.0.1", "port": port, "leaseSeconds": 3600},
    }


def instance_docs(settings: ControlSettings) -> list[dict[str, Any]]:
    return [
        instance_doc(service_name(s), k, 20000 + k)
        for s in range(settings.services)
        for k in range(settings.instances_per_service)
    ]


async def _apply_all(
    session: aiohttp.ClientSession, url: str, docs: list[dict[str, Any]], batch: int
) -> int:
    revision = 0
    for start in range(0, len(docs), batch):
        result = await api(
            session, "POST", f"{url}/api/v1/apply", {"documents": docs[start : start + batch]}
        )
        revision = int(result["revision"])
    return revision


async def _timed(coro: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = await coro
    return value, time.perf_counter() - started


def _records_from_lists(items: list[dict[str, Any]]) -> list[Any]:
    from gossamer.store.base import Record

    records = []
    for doc in items:
        meta = doc["metadata"]
        revision = int(meta.get("resourceVersion") or 1)
        records.append(
            Record(doc["kind"], meta["namespace"], meta["name"], doc, revision, revision)
        )
    return records


async def measure_compile(
    session: aiohttp.ClientSession, url: str, settings: ControlSettings
) -> list[dict[str, Any]]:
    """compile_view in this process, on the state the control plane holds (read via the API)."""
    from gossamer.control import compiler
    from gossamer.control.state import MeshState

    items: list[dict[str, Any]] = []
    revision = 0
    for plural in ("services", "instances"):
        listing = await api(session, "GET", f"{url}/api/v1/{plural}")
        items += listing["items"]
        revision = max(revision, int(listing.get("revision", 0)))
    records = _records_from_lists(items)
    started = time.perf_counter()
    state = MeshState.from_records(records, revision)
    build_seconds = time.perf_counter() - started
    ten = tuple(f"{NAMESPACE}/{service_name(i)}" for i in range(settings.watch_per_subscriber))
    every = tuple(f"{NAMESPACE}/{service_name(i)}" for i in range(settings.services))
    caches = [f for f in vars(compiler).values() if hasattr(f, "cache_clear")]

    def fresh_compile(keys: tuple[str, ...]) -> float:
        for cached in caches:
            cached.cache_clear()  # time a compile, not a cache hit
        begin = time.perf_counter()
        view = compiler.compile_view(state, keys)
        elapsed = time.perf_counter() - begin
        if len(view["services"]) < len(keys):
            raise RuntimeError(f"compile_view returned {len(view['services'])} of {len(keys)}")
        return elapsed

    ten_times = [fresh_compile(ten) for _ in range(settings.compile_repeats)]
    all_times = [fresh_compile(every) for _ in range(max(1, settings.compile_repeats // 5))]
    size = f"{settings.services} services, {len(records) - settings.services} instances"
    return [
        _measure(f"build MeshState ({size})", build_seconds * 1000, "ms"),
        _measure(f"compile_view, {len(ten)} services (median)", median(ten_times) * 1000, "ms"),
        _measure(
            f"compile_view, all {len(every)} services (median)", median(all_times) * 1000, "ms"
        ),
    ]


def _measure(name: str, value: float, unit: str, goal: str = "") -> dict[str, Any]:
    return {"measure": name, "value": round(value, 3), "unit": unit, "goal": goal or None}


async def measure_fanout(
    control: ControlPlane, settings: ControlSettings, count: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """One fleet of `count` simulated proxies: connect, time the changes, disconnect."""
    _raise_fd_limit(4 * count + 1024)  # two sockets per subscriber, here and in the children
    services = [f"{NAMESPACE}/{service_name(i)}" for i in range(settings.services)]
    lists = watch_lists(count, services, settings.watch_per_subscriber)
    # Every simulated proxy presents one token scoped to their service, as sidecars do.
    token = await control.sidecar_token(SUBSCRIBER_SERVICE)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    subscribers = [Subscriber(f"sim{count}-{i:05d}", w) for i, w in enumerate(lists)]
    fleet = Fleet(control.url, subscribers, SUBSCRIBER_SERVICE, headers)
    with _pinned_to(DRIVER_CORE):
        return await _fanout(fleet, control, settings)


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@contextlib.contextmanager
def _pinned_to(core: int) -> Iterator[None]:
    """Keep the simulator off the control plane's core while it measures the control plane."""
    before = os.sched_getaffinity(0)
    if cpu_count() >= 2:
        os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


async def _fanout(
    fleet: Fleet, control: ControlPlane, settings: ControlSettings
) -> tuple[list[dict[str, Any]], list[str]]:
    pids = process_tree(control.started.pid)
    rss_before = tree_rss_mib(pids)
    failures: list[str] = []
    latencies: list[float] = []
    receipt_latencies: list[float] = []
    client_cpu: list[float] = []
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(fleet.run_one(sub)) for sub in fleet.subscribers]
        try:
            began = time.perf_counter()
            async with asyncio.timeout(120):
                await fleet.wait_all_acked(1)
            connect_seconds = time.perf_counter() - began
            rss_after = tree_rss_mib(pids)
            hot = service_name(0)
            # Half as many changes for the big fleets: each one costs seconds there.
            changes = settings.changes if len(fleet.subscribers) <= 1000 else settings.changes // 2
            for change in range(max(1, changes)):
                began, cpu_began = time.perf_counter(), time.process_time()
                doc = instance_doc(hot, 99, 30000 + change)  # a new port each time: a real change
                async with control.session() as session:
                    body = {"documents": [doc]}
                    result = await api(session, "POST", f"{control.url}/api/v1/apply", body)
                async with asyncio.timeout(30):
                    await fleet.wait_all_acked(int(result["revision"]))
                latencies.append(time.perf_counter() - began)
                client_cpu.append(time.process_time() - cpu_began)
                if fleet.received_at_least(int(result["revision"])) == len(fleet.subscribers):
                    receipt_latencies.append(fleet.last_received_at - began)
        except (TimeoutError, RuntimeError) as exc:
            failures.append(f"fan-out: {exc!r} ({len(fleet.errors)} subscriber errors)")
        finally:
            for task in tasks:
                task.cancel()
    if failures:
        return [], failures
    n = len(fleet.subscribers)
    ack_goal = "< 1000 ms" if n <= 1000 else ""  # the goal is for 1,000
    return [
        _measure(f"connect {n} subscribers, all snapshots ACKed", connect_seconds, "s"),
        _measure(
            f"change → last ACK, {n} subscribers, p50 of {len(latencies)}",
            percentile(latencies, 50) * 1000,
            "ms",
            ack_goal,
        ),
        _measure(
            f"change → last ACK, {n} subscribers, p99",
            percentile(latencies, 99) * 1000,
            "ms",
            ack_goal,
        ),
        _measure(
            f"change → last delta received, {n} subscribers, p50 of {len(receipt_latencies)}",
            percentile(receipt_latencies, 50) * 1000,
            "ms",
        ),
        _measure(
            f"simulator CPU per change, {n} subscribers (bench process)",
            median(client_cpu) * 1000,
            "ms",
        ),
        _measure(f"control-plane RSS before {n} subscribers", rss_before, "MiB"),
        _measure(f"control-plane RSS with {n} subscribers", rss_after, "MiB"),
        _measure(f"memory per subscriber ({n})", (rss_after - rss_before) / n, "MiB", "≤ 0.5 MB"),
    ], failures


async def run_control(procs: ProcessSet, quick: bool) -> dict[str, Any]:
    settings = QUICK if quick else FULL
    control = await start_control(procs, CONTROL_CORE)
    url = control.url
    measures: list[dict[str, Any]] = []
    failures: list[str] = []
    async with control.session() as session:
        services = [service_doc(i) for i in range(settings.services)]
        instances = instance_docs(settings)
        _, service_seconds = await _timed(_apply_all(session, url, services, settings.batch))
        _, instance_seconds = await _timed(_apply_all(session, url, instances, settings.batch))
        batches = f"batches of {settings.batch}"
        measures += [
            _measure(f"apply {len(services)} services ({batches})", service_seconds, "s"),
            _measure(f"apply {len(instances)} instances ({batches})", instance_seconds, "s"),
            _measure(
                "apply throughput",
                (len(services) + len(instances)) / (service_seconds + instance_seconds),
                "docs/s",
            ),
        ]
        measures += await measure_compile(session, url, settings)
        for count in settings.subscribers:
            fanout, problems = await measure_fanout(control, settings, count)
            measures += fanout
            failures += problems
    for row in measures:
        print(f"  {row['measure']}: {row['value']} {row['unit']}", flush=True)
    return {
        "settings": settings.__dict__,
        "measures": measures,
        "failures": failures,
        "notes": [
            f"control plane pinned to core {CONTROL_CORE}; subscribers are simulated in the bench "
            f"process (each watches {settings.watch_per_subscriber} services, all share the changed one)"
        ],
    }
