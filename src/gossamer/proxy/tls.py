"""mTLS for the data path: SSL contexts built from in-memory PEM, SPIFFE peer checks, and
hot rotation. Standard library only (no `cryptography`): the sidecar's hot path stays lean.

SPIFFE authenticates by the URI SAN, not a DNS name: contexts verify the chain against the
trust bundle with hostname checking off, and the caller checks the peer's SPIFFE ID
(`check_peer`) once the handshake is done, before sending a byte of the request.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from typing import Any

ALPN = ["http/1.1"]
# TLS 1.2 fallback: forward-secret AEAD suites only (TLS 1.3 suites are all fine).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
SPIFFE_SCHEME = "spiffe://"


class PeerIdentityError(ConnectionError):
    """The peer's certificate verified but names the wrong (or no) SPIFFE ID."""


def server_context(cert_chain_pem: bytes, key_pem: bytes, bundle_pem: bytes) -> ssl.SSLContext:
    """Inbound: present our SVID, require a client certificate that chains to the bundle."""
    ctx = _base_context(ssl.PROTOCOL_TLS_SERVER, cert_chain_pem, key_pem, bundle_pem)
    # No resumption: a resumed session skips client-certificate verification, which would
    # let a peer outlive a root dropped from the bundle.
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    return ctx


def client_context(cert_chain_pem: bytes, key_pem: bytes, bundle_pem: bytes) -> ssl.SSLContext:
    """Outbound: present our SVID, verify the server against the bundle (not by DNS name)."""
    ctx = _base_context(ssl.PROTOCOL_TLS_CLIENT, cert_chain_pem, key_pem, bundle_pem)
    ctx.check_hostname = False  # identity is the URI SAN: see check_peer
    return ctx


def _base_context(
    protocol: ssl._SSLMethod, cert_chain_pem: bytes, key_pem: bytes, bundle_pem: bytes
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(protocol)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.set_alpn_protocols(ALPN)
    ctx.verify_mode = ssl.CERT_REQUIRED
    # A user-supplied intermediate may be the bundle's anchor (no self-signed root above it).
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.load_verify_locations(cadata=bundle_pem.decode("ascii"))
    with _private_pem_path(key_pem + b"\n" + cert_chain_pem) as path:
        ctx.load_cert_chain(path)
    return ctx


@contextlib.contextmanager
def _private_pem_path(data: bytes) -> Iterator[str]:
    """A path `ssl` can read the key from: an anonymous memfd (never on disk) on Linux,
    else a 0600 file in a private temp dir, removed as soon as it is loaded."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd("gossamer-svid", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="gossamer-tls-") as tmp:  # created 0700
        path = os.path.join(tmp, "svid.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        yield path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def peer_spiffe_id(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The verified peer's SPIFFE ID: its one URI SAN, if that is a spiffe:// URI.
    None without a verified certificate, or with zero or several URI SANs (spec: exactly one)."""
    if ssl_object is None:
        return None
    cert: Any = ssl_object.getpeercert()
    if not cert:
        return None
    uris = [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]
    if len(uris) != 1 or not uris[0].startswith(SPIFFE_SCHEME):
        return None
    return str(uris[0])


def check_peer(ssl_object: ssl.SSLObject | ssl.SSLSocket | None, expected: str) -> str:
    """Raise PeerIdentityError unless the peer is exactly `expected`; returns the ID."""
    actual = peer_spiffe_id(ssl_object)
    if actual != expected:
        raise PeerIdentityError(f"peer identity is {actual or 'missing'}, expected {expected}")
    return actual


class MeshTLS:
    """The sidecar's current contexts; `update` swaps in new ones without touching sockets.

    `server_context` is one stable object to hand to listeners once: it swaps each new
    connection to the newest server context during the ClientHello. `client_context` is
    replaced on update, so connectors must read it per new connection.
    """

    def __init__(self, cert_chain_pem: bytes, key_pem: bytes, bundle_pem: bytes) -> None:
        self._current_server = server_context(cert_chain_pem, key_pem, bundle_pem)
        self.client_context = client_context(cert_chain_pem, key_pem, bundle_pem)
        self.server_context = server_context(cert_chain_pem, key_pem, bundle_pem)
        self.server_context.sni_callback = self._use_current
        self.generation = 1

    def update(self, cert_chain_pem: bytes, key_pem: bytes, bundle_pem: bytes) -> None:
        """New SVID and/or bundle for new connections; raises ssl.SSLError (keeping the old
        contexts) if the material does not load."""
        new_server = server_context(cert_chain_pem, key_pem, bundle_pem)
        new_client = client_context(cert_chain_pem, key_pem, bundle_pem)
        self._current_server, self.client_context = new_server, new_client
        self.generation += 1

    def _use_current(
        self, ssl_object: ssl.SSLObject, server_name: str | None, front: ssl.SSLContext
    ) -> None:
        # Called for every ClientHello, with or without SNI; the newest context then
        # supplies our certificate and the trust store that verifies the client.
        ssl_object.context = self._current_server
