"""How a sidecar proves what it is to the control plane (standard library only).

A bootstrap token comes from `--token`, `--token-file` or GOSSAMER_TOKEN; the text an admin
is given is `gst_<id>.<secret>#sha256:<hex>`: the part after `#` is the mesh CA's fingerprint,
which pins the control plane's certificate on first contact over https (the way kubeadm's
discovery hash does). Without a token, on a loopback control plane whose data dir this user
can read, the sidecar uses the admin credential found there only to obtain a token scoped to
its own service, and says so in its log.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ADMIN_TOKEN_FILE = Path("credentials") / "admin.token"
LOCAL_TOKEN_TTL = 30 * 86400
FINGERPRINT_PREFIX = "sha256:"


class BootstrapError(Exception):
    """No usable credential (the message says what to do)."""


@dataclass(frozen=True)
class Credential:
    token: str | None
    fingerprint: str | None = None  # sha256:<hex> of the mesh CA certificate


def split_token(text: str) -> Credential:
    token, _, fingerprint = text.strip().partition("#")
    if fingerprint and not fingerprint.startswith(FINGERPRINT_PREFIX):
        raise BootstrapError(f"token fingerprint must start with {FINGERPRINT_PREFIX}")
    return Credential(token or None, fingerprint or None)


def read_token(token: str | None, token_file: str | None) -> Credential:
    """--token (or GOSSAMER_TOKEN, the parser's default) or --token-file (mode 0600)."""
    if token:
        return split_token(token)
    if token_file:
        path = Path(token_file)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise BootstrapError(
                    f"{path}: token file has mode {mode:04o}; run chmod 600 {path}"
                )
            return split_token(path.read_text())
        except OSError as exc:
            raise BootstrapError(f"{path}: cannot read the token file ({exc.strerror})") from None
    return Credential(None)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def control_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(os.environ.get("GOSSAMER_DATA_DIR") or os.path.join(base, "gossamer"))


def local_admin_token(control_url: str, data_dir: Path | None = None) -> str | None:
    """The control plane's admin credential, when it is on loopback and the file is ours."""
    if not is_loopback_url(control_url):
        return None
    path = (data_dir or control_data_dir()) / ADMIN_TOKEN_FILE
    try:
        info = path.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            return None
        return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def bundle_fingerprints(bundle_pem: str) -> set[str]:
    """sha256:<hex> of every certificate in a PEM bundle."""
    end = "-----END CERTIFICATE-----"
    found = set()
    for part in bundle_pem.split(end):
        if "-----BEGIN CERTIFICATE-----" in part:
            der = ssl.PEM_cert_to_DER_cert(part.strip() + "\n" + end + "\n")
            found.add(FINGERPRINT_PREFIX + hashlib.sha256(der).hexdigest())
    return found
