"""The gateway's view as received from the control plane, and its virtual-host tables.

`GatewayView.from_wire(view)` checks the shape once; `HostTable.build(listener, snapshot)`
turns a listener's routes into one ServiceView per hostname (the sidecar's own route
matcher and backends), rebuilt whenever the view or the snapshot changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gossamer.proxy.cli import parse_duration
from gossamer.proxy.snapshot import ServiceView, Snapshot, route_view


@dataclass(frozen=True)
class ListenerView:
    name: str
    port: int
    protocol: str  # HTTP | HTTPS
    hostname: str | None
    https_redirect: bool
    hsts_max_age: int | None
    certificates: tuple[Mapping[str, str], ...]
    hosts: Mapping[str, list[Any]]  # hostname pattern -> compiled route pairs
    auth: Mapping[str, str]  # route key -> AuthPolicy key
    rate_limit: Mapping[str, str]  # route key -> RateLimitPolicy key


@dataclass(frozen=True)
class GatewayView:
    name: str
    namespace: str
    replicas: int
    listeners: tuple[ListenerView, ...]
    auth_policies: Mapping[str, Any] = field(default_factory=dict)
    rate_limit_policies: Mapping[str, Any] = field(default_factory=dict)
    services: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_wire(cls, view: Mapping[str, Any]) -> GatewayView:
        try:
            listeners = tuple(
                ListenerView(
                    name=str(item["name"]),
                    port=int(item["port"]),
                    protocol=str(item["protocol"]),
                    hostname=item.get("hostname"),
                    https_redirect=bool(item.get("httpsRedirect")),
                    hsts_max_age=item.get("hstsMaxAge"),
                    certificates=tuple(item.get("certificates") or ()),
                    hosts=dict(item.get("hosts") or {}),
                    auth=dict(item.get("auth") or {}),
                    rate_limit=dict(item.get("rateLimit") or {}),
                )
                for item in view["listeners"]
            )
            return cls(
                name=str(view["name"]),
                namespace=str(view["namespace"]),
                replicas=max(1, int(view.get("replicas", 1))),
                listeners=listeners,
                auth_policies=dict(view.get("authPolicies") or {}),
                rate_limit_policies=dict(view.get("rateLimitPolicies") or {}),
                services=tuple(view.get("services") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"gateway view: malformed ({exc!r})") from None


def normalize_host(authority: bytes | str) -> str:
    """'API.Example.com:8443' -> 'api.example.com' (IPv6 literals keep their brackets)."""
    host = authority.decode("latin-1") if isinstance(authority, bytes) else authority
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0].rstrip(".")


def matching_hosts(hosts: Mapping[str, Any], host: str) -> list[Any]:
    """Every virtual host `host` falls in, most specific first (Gateway API hostname
    precedence): the exact hostname, then each matching wildcard from the longest
    (`*.example.com` matches `a.example.com` and `a.b.example.com`), then `*`."""
    names = [host, *("*." + ".".join(host.split(".")[i:]) for i in range(1, host.count(".") + 1))]
    return [found for name in [*names, "*"] if (found := hosts.get(name)) is not None]


def find_host(hosts: Mapping[str, Any], host: str) -> Any:
    """The most specific virtual host `host` falls in, or None."""
    found = matching_hosts(hosts, host)
    return found[0] if found else None


class HostTable:
    """A listener's virtual hosts as ServiceViews over one snapshot."""

    def __init__(self, views: dict[str, ServiceView]) -> None:
        self.views = views

    @classmethod
    def build(cls, gateway: GatewayView, listener: ListenerView, snap: Snapshot) -> HostTable:
        ns, name = gateway.namespace, gateway.name
        views = {}
        for host, routes in listener.hosts.items():
            entry = {"name": name, "namespace": ns, "exists": True, "routes": routes}
            views[host] = route_view(gateway.key, entry, snap.services)
        return cls(views)

    def lookup(self, host: str) -> list[ServiceView]:
        """The virtual hosts to try, most specific first. Gateway API gives precedence to
        the rules of the route with the most specific matching hostname; a request none
        of them matches falls through to the less specific ones (exact host -> its
        wildcards -> `*`), never to a 404 while a matching wildcard rule exists."""
        views: list[ServiceView] = matching_hosts(self.views, host)
        return views


def parse_duration_text(text: str) -> float:
    """Gateway API durations ('1m30s', '500ms') in seconds."""
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit():
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        total += parse_duration(number + unit)
        number = ""
        i += len(unit)
    return total
