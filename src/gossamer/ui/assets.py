"""Which dashboard files exist and how they are typed: pure lookups, no request handling.

Only plain file names in static/ are served (no slashes, no dot-files), so a request can
never reach outside the folder, whatever it contains.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    etag: str


def content_type_for(name: str) -> str | None:
    """The Content-Type for a served file name, or None if that type is not served."""
    suffix = Path(name).suffix.lower()
    return CONTENT_TYPES.get(suffix)


def is_safe_name(name: str) -> bool:
    return bool(_SAFE_NAME.match(name)) and ".." not in name


@functools.cache
def _load(name: str) -> Asset | None:
    path = STATIC_DIR / name
    if not path.is_file():
        return None
    body = path.read_bytes()
    content_type = content_type_for(name)
    if content_type is None:
        return None
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    return Asset(name, body, content_type, etag)


def resolve_asset(name: str) -> Asset | None:
    """The file `name` of static/, or None when it is not one we serve."""
    if not is_safe_name(name) or content_type_for(name) is None:
        return None
    return _load(name)
