"""The inbound listener: accepts mesh traffic and forwards it to the local app.

TLS slots in as the server's `ssl` context (the peer identity is then read in
`connection_made`), and authorization as the `authorize` hook checked before forwarding.
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Callable

from gossamer.proxy.http.exchange import Exchange
from gossamer.proxy.http.listener import Identify, Listener, ListenerConfig
from gossamer.proxy.pool import UpstreamPool
from gossamer.proxy.telemetry.stats import Stats

# Decides before forwarding (e.g. inbound/authz.py); may rewrite `ex.upstream_target` (the
# normalised path). Returns False after answering the request itself (ex.fail).
Authorizer = Callable[[Exchange], bool]


class LocalAppTarget:
    """Every request goes to the local app; no retries beyond the stale-connection one."""

    __slots__ = ("authorize", "connect_timeout", "key", "request_timeout")

    def __init__(
        self,
        app_host: str,
        app_port: int,
        connect_timeout: float = 5.0,
        request_timeout: float = 15.0,
        authorize: Authorizer | None = None,
    ) -> None:
        self.key = (app_host, app_port)
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.authorize = authorize

    def begin(self, ex: Exchange) -> None:
        if ex.head.target.startswith(b"http://"):
            ex.upstream_target = _origin_form(ex.head.target)
        authorize = self.authorize
        if authorize is not None and not authorize(ex):
            return
        ex.set_deadline(self.request_timeout)
        ex.send(self.key, self.connect_timeout)

    def retry(self, ex: Exchange, status: int, reason: str, proven_unsent: bool) -> bool:
        return False

    def done(self, ex: Exchange, status: int, ok: bool) -> None:
        return None


def _origin_form(target: bytes) -> bytes:
    slash = target.find(b"/", 7)
    return target[slash:] if slash >= 0 else b"/"


def make_inbound_listener(
    pool: UpstreamPool,
    stats: Stats,
    app_host: str,
    app_port: int,
    *,
    config: ListenerConfig | None = None,
    authorize: Authorizer | None = None,
    server_ssl: ssl_module.SSLContext | None = None,
    identify: Identify | None = None,
) -> Listener:
    config = config or ListenerConfig(proto=b"https" if server_ssl is not None else b"http")
    target = LocalAppTarget(app_host, app_port, authorize=authorize)
    return Listener(target, pool, stats, "inbound", config, identify)
