"""The gateway's listeners: bound from the view, rebound when a port or certificate list
changes, certificates reloaded in place (tls.CertSet)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gossamer.gateway.cli import GatewayConfig
from gossamer.gateway.config import GatewayView, ListenerView
from gossamer.gateway.target import GatewayTarget
from gossamer.gateway.tls import CertSet
from gossamer.proxy.dataplane import DataPlane
from gossamer.proxy.http.listener import Listener
from gossamer.proxy.outbound.target import OutboundTarget

MakeTarget = Callable[[ListenerView, asyncio.TaskGroup, OutboundTarget], GatewayTarget]


class EdgeListeners:
    def __init__(
        self,
        dataplane: DataPlane,
        cfg: GatewayConfig,
        ports: dict[str, int],
        make_target: MakeTarget,
        log: Callable[[str], None],
    ) -> None:
        self.dataplane = dataplane
        self.cfg = cfg
        self.ports = ports  # shared with the ready line and /config
        self.make_target = make_target
        self.log = log
        self.listeners: dict[str, tuple[ListenerView, Listener, CertSet | None]] = {}

    async def bind(self, view: GatewayView) -> None:
        """Bind what the view declares; close what it no longer does; retarget the rest."""
        wanted = {item.name: item for item in view.listeners}
        for name in [n for n in self.listeners if n not in wanted]:
            _, gone, gone_certs = self.listeners.pop(name)
            gone.close()
            if gone_certs is not None:
                gone_certs.discard_scratch()
            self.ports.pop(f"listener.{name}", None)
        for name, item in wanted.items():
            current = self.listeners.get(name)
            if current is not None and _same_socket(current[0], item):
                self.listeners[name] = (item, current[1], current[2])
                continue
            if current is not None:
                current[1].close()
                if current[2] is not None:
                    current[2].discard_scratch()
            certs = CertSet(item.certificates) if item.protocol == "HTTPS" else None
            port = self.cfg.port_overrides.get(name, item.port)

            def make(tg: asyncio.TaskGroup, outbound: Any, item: ListenerView = item) -> Any:
                return self.make_target(item, tg, outbound)

            ssl = certs.outer if certs is not None else None
            listener = await self.dataplane.start_edge(make, self.cfg.address, port, ssl)
            assert listener.server is not None
            self.ports[f"listener.{name}"] = int(listener.server.sockets[0].getsockname()[1])
            self.listeners[name] = (item, listener, certs)
        # Redirects name the HTTPS listener's bound port (it may differ from the declared one).
        https = next((f"listener.{i.name}" for i in view.listeners if i.protocol == "HTTPS"), "")
        for item, listener, _ in self.listeners.values():
            target = listener.target
            if isinstance(target, GatewayTarget):
                target.listener = item
                target.https_port = self.ports.get(https)

    async def reload_certs(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.cert_check)
            for name, (_, _, certs) in list(self.listeners.items()):
                if certs is not None and certs.reload_if_changed():
                    self.log(f"listener {name}: certificates reloaded")

    def discard_scratch(self) -> None:
        for _, _, certs in self.listeners.values():
            if certs is not None:
                certs.discard_scratch()  # private keys from Secrets


def _same_socket(a: ListenerView, b: ListenerView) -> bool:
    """Whether a listener can keep its socket (a new port or certificate list rebinds)."""
    return (a.port, a.protocol, a.certificates) == (b.port, b.protocol, b.certificates)
