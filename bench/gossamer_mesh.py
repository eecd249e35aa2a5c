"""gossamer's sidecar pair for the data-plane benchmark: control plane + two `gossamer proxy`."""

from __future__ import annotations

import importlib.util

from bench.procs import ProcessSet
from bench.topology import Topology


def unavailable() -> str | None:
    """Why gossamer's pieces cannot run here (None when they can)."""
    for module in ("gossamer.proxy.cli", "gossamer.control.server"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not there yet"
    return None


async def start(procs: ProcessSet, upstream_port: int, core: int | None) -> list[Topology]:
    raise NotImplementedError
