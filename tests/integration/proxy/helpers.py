"""Real processes for the sidecar's integration tests: a control plane, apps with their
sidecars (`gossamer run`), and a steady load through a client sidecar.

Every process runs in its own session so a test can SIGKILL/SIGSTOP it together with its
app, and `Procs.close()` leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools

GOSSAMER = [sys.executable, "-m", "gossamer.cli.main"]
READY_TIMEOUT = 30.0
CONTROL_READY = b"gossamer control plane listening on"


@dataclass
class Proc:
    name: str
    proc: asyncio.subprocess.Process
    log_path: Path
    ready: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def port(self, name: str) -> int:
        return int(self.ready[name])

    async def wait_ready(self, marker: bytes, limit: float = READY_TIMEOUT) -> dict[str, str]:
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(limit):
                while True:
                    line = await self.proc.stdout.readline()
                    if not line:
                        raise AssertionError(f"{self.name} exited before ready:\n{self.log()}")
                    if line.startswith(marker):
                        break
        except TimeoutError:
            raise AssertionError(f"{self.name} not ready in {limit}s:\n{self.log()}") from None
        text = line.decode()
        self.ready = dict(p.split("=", 1) for p in text.split() if "=" in p)
        if marker == CONTROL_READY:  # "... listening on http://127.0.0.1:PORT (data: ...)"
            self.ready["port"] = text.split("http://", 1)[1].split()[0].rsplit(":", 1)[1]
        return self.ready

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def auth_headers(self) -> dict[str, str]:
        """For a control plane started by Procs.control: its admin credential (0600 file)."""
        token = (self.log_path.parent / "control" / "credentials" / "admin.token").read_text()
        return {"Authorization": f"Bearer {token.strip()}"}

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    async def stop(self, grace: float = 5.0) -> int:
        self.signal_group(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        self.signal_group(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                code = await self.proc.wait()
        except TimeoutError:
            code = -9
        self.signal_group(signal.SIGKILL)  # anything left in its group
        await self.proc.wait()
        return code


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Procs:
    """Starts processes under a test's tmp dir; close() stops every one of them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.all: list[Proc] = []

    async def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log_path = self.tmp / f"{name}.log"
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=fd,
                stdin=asyncio.subprocess.DEVNULL,
                # Local convenience: sidecars and the CLI find the admin credential here.
                env={**os.environ, "GOSSAMER_DATA_DIR": str(self.tmp / "control"), **(env or {})},
                start_new_session=True,
            )
        finally:
            os.close(fd)
        p = Proc(name, proc, log_path)
        self.all.append(p)
        return p

    async def control(self, port: int = 0, name: str = "control") -> Proc:
        argv = [*GOSSAMER, "control", "--listen", f"127.0.0.1:{port}",
                "--data-dir", str(self.tmp / "control")]  # fmt: skip
        p = await self.spawn(name, argv)
        await p.wait_ready(CONTROL_READY)
        return p

    async def instance(
        self,
        control_port: int,
        service: str,
        name: str,
        *,
        labels: str = "",
        lease: str = "1.5s",
        extra: list[str] | None = None,
        wait: bool = True,
    ) -> Proc:
        """An echo app (answers its `name`) behind `gossamer run`, every port picked free."""
        app_port = free_port()
        argv = [*GOSSAMER, "run", "--service", service, "--port", str(app_port),
                "--control", f"http://127.0.0.1:{control_port}", "--lease", lease,
                "--outbound-port", "0", "--inbound-port", "0", "--stats-port", "0",
                "--admin-port", "0", "--drain-grace", "3s", "--app-grace", "2s",
                *(["--labels", labels] if labels else []), *(extra or []),
                "--", sys.executable, "-m", "gossamer.demo.apps", "echo"]  # fmt: skip
        p = await self.spawn(name, argv, env={"DEMO_INSTANCE": name})
        if wait:
            await p.wait_ready(b"gossamer-proxy ready")
        return p

    async def close(self) -> None:
        for p in reversed(self.all):
            await p.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- load ------------------------------------------------------------------------------------


class _Resp:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        self.done = True


async def http_get(
    port: int, host: str, path: str = "/", conn: Any = None, limit: float = 10.0
) -> tuple[int, dict[bytes, bytes], bytes, Any]:
    """GET through a sidecar's outbound port; reuses `conn` (reader, writer) when given."""
    async with asyncio.timeout(limit):
        if conn is None:
            conn = await asyncio.open_connection("127.0.0.1", port)
        reader, writer = conn
        writer.write(f"GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        resp = _Resp()
        parser = httptools.HttpResponseParser(resp)
        while not resp.done:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("connection closed mid-response")
            parser.feed_data(data)
        if resp.headers.get(b"connection", b"").lower() == b"close":
            writer.close()
            conn = None
        return parser.get_status_code(), resp.headers, bytes(resp.body), conn


@dataclass
class Load:
    """`workers` keep-alive clients sending GETs back to back, recording every outcome."""

    port: int
    host: str
    path: str = "/"
    workers: int = 3
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    by_instance: Counter[str] = field(default_factory=Counter)
    failure_times: list[tuple[float, float]] = field(default_factory=list)  # (sent, failed)
    answered: list[tuple[float, str]] = field(default_factory=list)  # (sent, instance)
    connections: int = 0  # opened by the workers; more than `workers` means one was dropped
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def _worker(self) -> None:
        conn = None
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", self.port)
                    self.connections += 1
                status, headers, body, conn = await http_get(self.port, self.host, self.path, conn)
            except (OSError, TimeoutError, ConnectionError, httptools.HttpParserError) as exc:
                conn = None
                self._fail(sent, f"{type(exc).__name__}: {exc}")
                continue
            if status == 200:
                self.ok += 1
                instance = json.loads(body)["instance"]
                self.by_instance[instance] += 1
                self.answered.append((sent, instance))
            else:
                reason = headers.get(b"x-gossamer-reason", b"").decode()
                self._fail(sent, f"{status} {reason}")
            self._progress.set()
        if conn is not None:
            conn[1].close()

    def _fail(self, sent: float, what: str) -> None:
        self.failures.append(what)
        self.failure_times.append((sent, time.monotonic()))
        self._progress.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(self.workers):
                tg.create_task(self._worker())

    def stop(self) -> None:
        self._stop.set()

    async def until(self, predicate: Any, limit: float = 20.0) -> None:
        """Wait (on request completions, not a timer) until `predicate(self)` holds."""
        async with asyncio.timeout(limit):
            while not predicate(self):
                self._progress.clear()
                await self._progress.wait()

    async def requests(self, n: int, limit: float = 20.0) -> None:
        """Let `n` more requests complete."""
        target = self.ok + len(self.failures) + n
        await self.until(lambda s: s.ok + len(s.failures) >= target, limit)

    def sent_since(self, t: float) -> Counter[str]:
        """Which instances answered the requests sent at or after `t`."""
        return Counter(instance for sent, instance in self.answered if sent >= t)
