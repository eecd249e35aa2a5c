"""Which credential an operator tool presents: `--token`/GOSSAMER_TOKEN, else (local
convenience) the admin credential in the control plane's data dir, when the control plane is
on loopback and this user can read the file (it is 0600, so only its owner can).

Standard library only: the sidecar uses this too.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

ADMIN_TOKEN_FILE = Path("credentials") / "admin.token"


def data_dir() -> Path:
    """The control plane's default data dir (GOSSAMER_DATA_DIR, else XDG data home)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(os.environ.get("GOSSAMER_DATA_DIR") or os.path.join(base, "gossamer"))


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_admin_token(directory: Path | None = None) -> str | None:
    """The admin credential in `directory` (default: data_dir()), if it is ours and private."""
    path = (directory or data_dir()) / ADMIN_TOKEN_FILE
    try:
        info = path.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            return None  # someone else's, or not private: do not use it
        return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def operator_token(control_url: str, explicit: str | None = None) -> str | None:
    """The token to send to `control_url`: explicit, env, or the local admin credential."""
    token = explicit or os.environ.get("GOSSAMER_TOKEN")
    if token:
        return token.strip()
    return local_admin_token() if is_loopback_url(control_url) else None
