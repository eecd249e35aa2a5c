"""The inbound port when the mesh has a CA: accept, peek at the first byte, then serve mTLS
(a TLS record starts with 0x16, a handshake) or, in PERMISSIVE mode only, plaintext.

The mode and the server context are read per connection from `MeshSecurity`, so a changed
PeerAuthentication or a renewed SVID applies to the next connection without a restart.
Handshake failures are counted by reason; plaintext on a STRICT port is refused and counted.
The per-connection work (peek, handshake) runs in this acceptor's task group.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable

from gossamer.proxy.mtls import DISABLE, PLAINTEXT, STRICT, MeshSecurity, NoIdentity, classify

TLS_HANDSHAKE_RECORD = 0x16
PEEK_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0


class PeekingAcceptor:
    """A listening socket with the little of asyncio.Server's interface Listener uses."""

    def __init__(
        self,
        protocol_factory: Callable[[], asyncio.Protocol],
        security: MeshSecurity,
    ) -> None:
        self.protocol_factory = protocol_factory
        self.security = security
        self.sockets: list[socket.socket] = []
        self._serving = False
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int, task_group: asyncio.TaskGroup) -> int:
        sock = socket.create_server((host, port), backlog=1024)
        sock.setblocking(False)
        self.sockets = [sock]
        self._serving = True
        self._task = task_group.create_task(self._serve(sock))
        return int(sock.getsockname()[1])

    def is_serving(self) -> bool:
        return self._serving

    def close(self) -> None:
        """Stop accepting (connections already handed over are the listener's)."""
        self._serving = False
        if self._task is not None:
            self._task.cancel()
        for sock in self.sockets:
            sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            while True:
                try:
                    conn, _ = await loop.sock_accept(sock)
                except OSError:
                    if not self._serving:
                        return
                    await asyncio.sleep(0.05)  # e.g. EMFILE: let descriptors free up
                    continue
                tg.create_task(self._hand_over(conn))

    async def _hand_over(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            mode = self.security.inbound_mode()
            context: ssl.SSLContext | None = None
            if mode != DISABLE:
                first = await _peek(loop, conn)
                if first is None:
                    conn.close()
                    return
                if first == TLS_HANDSHAKE_RECORD:
                    context = self.security.server_context()
                elif mode == STRICT:
                    self.security.on_failure(PLAINTEXT)
                    conn.close()
                    return
            await loop.connect_accepted_socket(
                self.protocol_factory,
                conn,
                ssl=context,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if context is not None else None,
            )
        except NoIdentity:
            conn.close()
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self.security.on_failure(classify(exc))
            conn.close()
        except (OSError, TimeoutError):
            conn.close()


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> int | None:
    """The first byte the client sent, without consuming it (None: closed or timed out)."""
    ready = loop.create_future()
    fd = conn.fileno()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, readable)
    try:
        async with asyncio.timeout(PEEK_TIMEOUT):
            await ready
        data = conn.recv(1, socket.MSG_PEEK)
    except (TimeoutError, OSError):
        return None
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)
    return data[0] if data else None
