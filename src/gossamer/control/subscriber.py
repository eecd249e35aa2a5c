"""One proxy's stream state, and the assembly of stream lines from shared entry bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from gossamer.control.compiler import PROTOCOL_VERSION, encode_message


class Subscriber:
    """One proxy's stream state. Holds keys only, never entry copies."""

    __slots__ = (
        "acked_version",
        "changed_version",
        "connected",
        "id",
        "last_seen",
        "mesh_pending",
        "namespace",
        "pending",
        "removed",
        "replaced",
        "roots",
        "sent_version",
        "service",
        "view",
        "wake",
    )

    def __init__(self, proxy_id: str, service: str, namespace: str, now: float) -> None:
        self.id = proxy_id
        self.service = service
        self.namespace = namespace
        self.roots: set[str] = set()  # what the proxy asked for
        self.view: set[str] = set()  # roots plus what their routes need
        self.pending: set[str] = set()  # keys whose entry changed since the last line
        self.removed: set[str] = set()
        self.mesh_pending = False
        self.wake = asyncio.Event()
        self.sent_version = 0
        self.acked_version = 0
        self.changed_version = 0  # the last version at which its view changed
        self.last_seen = now
        self.connected = True
        self.replaced = False  # a newer stream with the same id took over


def assemble_line(
    kind: str,
    version: int,
    mesh: bytes | None,
    entries: Iterable[tuple[str, bytes]],
    removed: list[str] | None,
) -> bytes:
    """A "snapshot" or "delta" line joined from pre-encoded ENTRY bytes (never re-encoded)."""
    parts = [
        b'{"type":"%s","protocol":%d,"version":%d' % (kind.encode(), PROTOCOL_VERSION, version)
    ]
    if mesh is not None:
        parts.append(b',"mesh":' + mesh)
    parts.append(b',"services":{')
    parts.append(b",".join(encode_message(key) + b":" + data for key, data in entries))
    parts.append(b"}")
    if removed is not None:
        parts.append(b',"removed":' + encode_message(removed))
    parts.append(b"}\n")
    return b"".join(parts)
