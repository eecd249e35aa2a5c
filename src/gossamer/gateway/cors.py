"""CORS at the edge (the `cors` of an AuthPolicy, after Envoy Gateway's SecurityPolicy). Pure.

Preflights (OPTIONS with Origin and Access-Control-Request-Method) are answered by the
gateway before authentication (browsers send them without credentials); other requests
from an allowed origin get the Access-Control-* response headers. A disallowed origin gets
no CORS headers (the browser then refuses the response) and its preflight a 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gossamer.proxy.filters import HeaderOps


def _origin_allowed(patterns: tuple[str, ...], origin: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == origin:
            return True
        scheme, sep, host = pattern.partition("://*.")
        if sep and origin.startswith(scheme + "://") and origin.endswith("." + host):
            return True  # "https://*.example.com"
    return False


class Cors:
    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.origins = tuple(spec.get("allowOrigins") or ())
        self.methods = ", ".join(spec.get("allowMethods") or ("GET", "POST")).encode()
        self.headers = ", ".join(spec.get("allowHeaders") or ()).encode()
        self.expose = ", ".join(spec.get("exposeHeaders") or ()).encode()
        self.max_age = int(spec.get("maxAge", 600))
        self.credentials = bool(spec.get("allowCredentials", False))

    def allowed(self, origin: bytes) -> bool:
        return _origin_allowed(self.origins, origin.decode("latin-1"))

    def _common(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        out = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if self.credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        return out

    def preflight_lines(self, origin: bytes) -> bytes:
        """Header lines of the answer to an allowed preflight."""
        pairs = self._common(origin)
        pairs.append((b"access-control-allow-methods", self.methods))
        pairs.append((b"access-control-max-age", b"%d" % self.max_age))
        if self.headers:
            pairs.append((b"access-control-allow-headers", self.headers))
        return b"".join(name + b": " + value + b"\r\n" for name, value in pairs)

    def response_ops(self, origin: bytes) -> HeaderOps:
        # Vary is added to (not replacing) what the upstream said.
        pairs = [p for p in self._common(origin) if p[0] != b"vary"]
        if self.expose:
            pairs.append((b"access-control-expose-headers", self.expose))
        return HeaderOps(set=tuple(pairs), add=((b"vary", b"Origin"),))
