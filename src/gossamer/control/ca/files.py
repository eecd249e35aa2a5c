"""Secret files: written 0600 atomically, refused when group or others can read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class InsecureKeyFileError(PermissionError):
    """A private key file is readable (or writable) by group or others."""


def check_private_file(path: Path) -> None:
    """Refuse a secret file that anyone but its owner can touch (like ssh does)."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise InsecureKeyFileError(
            f"{path}: private key file has mode {mode:04o}, readable by group or others; "
            f"run `chmod 600 {path}` and try again"
        )


def read_private_file(path: Path) -> bytes:
    check_private_file(path)
    return path.read_bytes()


def write_private_file(path: Path, data: bytes) -> None:
    """Create with 0600 from the first byte (no window with a wider mode), then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by umask, and may meet an old file
        out.write(data)
        out.flush()
        os.fsync(fd)
    os.replace(tmp, path)


def write_public_file(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def make_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
