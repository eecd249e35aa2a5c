"""mTLS policy of the data path (standard library only): which contexts to use, which peer
identities to accept, and how handshake failures are named for the counters.

`MeshSecurity` is the state the certificate manager (proxy/workload.py) keeps current:
the MeshTLS contexts, whether our SVID may still be served, the trust domain, the mesh
mode. The pool asks it per new upstream connection (`originate`), the inbound acceptor
per accepted connection (`inbound_mode`, `server_context`). Nothing here runs per request.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from gossamer.proxy.tls import MeshTLS, peer_spiffe_id

if TYPE_CHECKING:
    from gossamer.proxy.snapshot import Snapshot
    from gossamer.proxy.state import SnapshotHolder

EndpointKey = tuple[str, int]
# On the Instance a sidecar registers: it speaks mesh mTLS (Istio's tlsMode label). Endpoints
# without it (an app registered by hand, an external host) are dialled in plaintext.
TLS_MODE_LABEL = "security.gossamer.dev/tls-mode"
TLS_MODE_MTLS = "mtls"
STRICT, PERMISSIVE, DISABLE = "STRICT", "PERMISSIVE", "DISABLE"

# Failure reasons (a fixed, small set: they become metric labels).
NO_CERT = "no_cert"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
UNKNOWN_CA = "unknown_ca"
WRONG_IDENTITY = "wrong_identity"
PLAINTEXT = "plaintext_on_strict"
PROTOCOL = "protocol_version"
NO_SVID = "no_svid"
RESUMED = "session_resumed"
OTHER = "handshake_error"


class NoIdentity(ConnectionError):
    """We hold no SVID we may serve (none yet, or expired): fail closed."""


def classify(exc: BaseException) -> str:
    """Name a handshake failure (as seen by either side) for the counters."""
    text = f"{getattr(exc, 'reason', '') or ''} {getattr(exc, 'verify_message', '') or ''} {exc}"
    text = text.lower()
    if "did not return a certificate" in text or "certificate required" in text:
        return NO_CERT
    if "expired" in text:
        return EXPIRED
    if "not yet valid" in text:
        return NOT_YET_VALID
    if "unknown ca" in text or "unable to get local issuer" in text or "self-signed" in text:
        return UNKNOWN_CA
    if "unsupported protocol" in text or "wrong version" in text or "version" in text:
        return PROTOCOL
    return OTHER


_SPIFFE = re.compile(r"^spiffe://([a-z0-9._-]{1,255})((?:/[A-Za-z0-9._-]+)+)$")


def in_trust_domain(spiffe_id: str | None, trust_domain: str) -> bool:
    """A well-formed SPIFFE ID (no NUL, no dot segments, ≤ 2048 bytes) in `trust_domain`."""
    if spiffe_id is None or len(spiffe_id) > 2048:
        return False
    m = _SPIFFE.match(spiffe_id)
    if m is None or m.group(1) != trust_domain:
        return False
    return all(seg not in (".", "..") for seg in m.group(2).split("/")[1:])


def spiffe_id_of(trust_domain: str, key: str) -> str:
    namespace, _, name = key.partition("/")
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{name}"


class MeshSecurity:
    """What the data path reads; the certificate manager writes."""

    def __init__(
        self,
        holder: SnapshotHolder,
        own_key: str,
        on_failure: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.holder = holder
        self.own_key = own_key
        self.on_failure = on_failure  # stats.tls_handshake_failure
        self.clock = clock
        self.enabled = False  # the control plane runs a CA (snapshot mesh.trustDomain)
        self.trust_domain = ""
        self.mesh_mode = STRICT
        self.tls: MeshTLS | None = None
        self.not_after = 0.0  # of our SVID; serve until then, then fail closed
        self._index_of: Snapshot | None = None
        self._identities: dict[EndpointKey, frozenset[str]] = {}
        self._plain: set[EndpointKey] = set()  # endpoints whose services all DISABLE mTLS
        self.on_expired: Callable[[], None] = lambda: None  # the data plane drops mTLS conns

    def can_serve(self) -> bool:
        return self.tls is not None and self.clock() < self.not_after

    # outbound -----------------------------------------------------------------------------

    def originate(self, key: EndpointKey) -> tuple[ssl.SSLContext | None, frozenset[str]]:
        """(client context, SPIFFE IDs the server may present) for a new connection to
        `key`; (None, ∅) for plaintext. Raises NoIdentity when TLS is due but we cannot."""
        if not self.enabled:
            return None, frozenset()
        expected = self._expected(key)
        if expected is None:  # mTLS disabled for every service at this endpoint
            return None, frozenset()
        tls = self.tls
        if tls is None or not self.can_serve():
            self.on_failure(NO_SVID)
            raise NoIdentity("no valid workload certificate")
        return tls.client_context, expected

    def check_server(self, ssl_object: ssl.SSLObject | None, expected: frozenset[str]) -> bool:
        """Secure naming: the server is one of the destination service's identities."""
        if peer_spiffe_id(ssl_object) in expected:
            return True
        self.on_failure(WRONG_IDENTITY)
        return False

    def _expected(self, key: EndpointKey) -> frozenset[str] | None:
        snap = self.holder.current
        if snap is not self._index_of:
            self._reindex(snap)
        return self._identities.get(key, frozenset()) or (
            None if key in self._plain else frozenset()
        )

    def _reindex(self, snap: Snapshot | None) -> None:
        identities: dict[EndpointKey, set[str]] = {}
        plain: set[EndpointKey] = set()
        for view in snap.services.values() if snap is not None else ():
            for ep in view.endpoints:
                key = (ep.address, ep.port)
                if view.mtls == DISABLE or ep.labels.get(TLS_MODE_LABEL) != TLS_MODE_MTLS:
                    plain.add(key)
                else:
                    identities.setdefault(key, set()).add(spiffe_id_of(self.trust_domain, view.key))
        self._identities = {k: frozenset(v) for k, v in identities.items()}
        self._plain = plain - set(identities)
        self._index_of = snap

    # inbound ------------------------------------------------------------------------------

    def inbound_mode(self) -> str:
        if not self.enabled:
            return DISABLE
        snap = self.holder.current
        view = snap.services.get(self.own_key) if snap is not None else None
        mode = view.mtls if view is not None else self.mesh_mode
        return mode if mode in (STRICT, PERMISSIVE, DISABLE) else STRICT

    def identify(self, transport: asyncio.BaseTransport) -> str | None:
        """The inbound caller's SPIFFE ID; a TLS peer outside our trust domain (or with a
        malformed ID, e.g. a NUL byte) is cut off before a byte of its request is read.
        None on a plaintext (PERMISSIVE) connection."""
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        if ssl_object.session_reused:
            # A resumed (TLS 1.2 session-id) handshake skips verifying the client's
            # certificate against today's bundle: never accept one.
            self.on_failure(RESUMED)
            cast(asyncio.Transport, transport).abort()
            return None
        peer = peer_spiffe_id(ssl_object)
        if not in_trust_domain(peer, self.trust_domain):
            self.on_failure(WRONG_IDENTITY)
            cast(asyncio.Transport, transport).abort()
            return None
        return peer

    def server_context(self) -> ssl.SSLContext:
        """The stable server context (swaps to the newest SVID per ClientHello)."""
        tls = self.tls
        if tls is None or not self.can_serve():
            self.on_failure(NO_SVID)
            raise NoIdentity("no valid workload certificate")
        return tls.server_context
