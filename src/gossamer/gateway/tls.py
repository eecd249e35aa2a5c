"""TLS termination: one server context per certificate, chosen by SNI, reloaded in place.

The listener's outer context serves clients without SNI (the first certificate); the
`sni_callback` moves each handshake onto the context whose certificate names the server
name (exact, then wildcard). An SNI that no certificate names is refused with the
`unrecognized_name` alert. `CertSet.reload_if_changed()` re-reads files whose mtime,
inode or size changed: new handshakes get the new certificate, open connections keep
theirs.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography import x509

MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"  # TLS 1.2 suites; 1.3 has only AEADs


def _context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(MODERN_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def cert_names(cert_pem: bytes) -> list[str]:
    """DNS names of the leaf certificate (SAN, else the CN), lower-cased."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return [n.lower() for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return [str(cns[0].value).lower()] if cns else []


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _stamp(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class CertSet:
    """The certificates of one HTTPS listener."""

    def __init__(self, refs: Sequence[Mapping[str, str]], scratch: Path | None = None) -> None:
        self.scratch = scratch or Path(tempfile.mkdtemp(prefix="gossamer-gw-"))
        self.files = [self._files(i, ref) for i, ref in enumerate(refs)]
        self.outer = _context()
        self.outer.sni_callback = self._pick
        self.by_name: dict[str, ssl.SSLContext] = {}
        self.stamps: list[tuple[tuple[int, int, int], tuple[int, int, int]]] = []
        self.reloads = 0
        self._load()

    def _files(self, index: int, ref: Mapping[str, str]) -> tuple[str, str]:
        if "cert" in ref:
            return ref["cert"], ref["key"]
        # A Secret: PEM text from the control plane, written where only we can read it.
        cert, key = self.scratch / f"{index}.crt", self.scratch / f"{index}.key"
        for path, text in ((cert, ref["certPem"]), (key, ref["keyPem"])):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(text)
        return str(cert), str(key)

    def _load(self) -> None:
        by_name: dict[str, ssl.SSLContext] = {}
        stamps = []
        for i, (cert, key) in enumerate(self.files):
            stamps.append((_stamp(cert), _stamp(key)))
            ctx = _context()
            ctx.load_cert_chain(cert, key)
            if i == 0:
                self.outer.load_cert_chain(cert, key)
            for name in cert_names(Path(cert).read_bytes()):
                by_name.setdefault(name, ctx)
        self.by_name = by_name
        self.stamps = stamps

    def discard_scratch(self) -> None:
        """Remove the files written for Secret certificates (they hold private keys)."""
        shutil.rmtree(self.scratch, ignore_errors=True)

    def reload_if_changed(self) -> bool:
        """Re-read changed files; False (keeping the old certificates) when unchanged or
        when the new files do not load (a half-written pair is retried next time)."""
        try:
            now = [(_stamp(c), _stamp(k)) for c, k in self.files]
        except OSError:
            return False
        if now == self.stamps:
            return False
        try:
            self._load()
        except (OSError, ssl.SSLError, ValueError):
            return False
        self.reloads += 1
        return True

    def context_for(self, server_name: str) -> ssl.SSLContext | None:
        name = server_name.lower().rstrip(".")
        found = self.by_name.get(name)
        if found is None and "." in name:
            found = self.by_name.get("*." + name.split(".", 1)[1])
        return found

    def _pick(
        self, sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        if server_name is None or _is_ip(server_name):
            return None  # no SNI (or an IP, which RFC 6066 forbids there): the first certificate
        ctx = self.context_for(server_name)
        if ctx is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = ctx
        return None
