"""The sidecar's link to the control plane: register, heartbeat, snapshot stream, ACK, watch.

A small HTTP/1.1 client on asyncio streams with httptools doing the response framing
(chunked decoding included). Nothing in the data path waits on anything here: the stream
only swaps snapshots into the holder, and when the control plane is away the sidecar keeps
serving on the last one while this module reconnects with capped, jittered back-off.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httptools

PROTOCOL_VERSION = 1
# The control plane sends a heartbeat line every 15 s; three missed ones mean a dead peer.
STREAM_IDLE_TIMEOUT = 45.0
REQUEST_TIMEOUT = 5.0
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class ControlError(Exception):
    """The control plane could not be reached or answered something unusable."""


# --- sans-IO decisions -----------------------------------------------------------------------


@dataclass
class Backoff:
    """Exponential back-off with full jitter, capped; `reset()` after a success."""

    base: float = 0.1
    cap: float = 5.0
    attempt: int = 0

    def next_delay(self, rand: float) -> float:
        """`rand` in [0, 1): the jitter source, passed in so tests are deterministic."""
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        # Never zero: a tight reconnect loop helps nobody.
        return max(self.base / 2, ceiling * rand)

    def reset(self) -> None:
        self.attempt = 0


def heartbeat_interval(lease_seconds: float) -> float:
    return max(0.05, lease_seconds / 3)


def parse_stream_line(line: bytes) -> dict[str, Any] | None:
    """One NDJSON line → a message dict, or None when it is not a message we understand."""
    line = line.strip()
    if not line:
        return None
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(msg, dict) or msg.get("type") not in ("snapshot", "delta", "heartbeat"):
        return None
    if not isinstance(msg.get("version"), int):
        return None
    return msg


# --- a minimal HTTP/1.1 client ---------------------------------------------------------------


@dataclass
class _Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    headers_done: bool = False
    complete: bool = False
    on_chunk: Callable[[bytes], None] | None = None

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, data: bytes) -> None:
        if self.on_chunk is not None:
            self.on_chunk(data)
        else:
            if len(self.body) + len(data) > MAX_RESPONSE_BYTES:
                raise ControlError("response too large")
            self.body += data

    def on_message_complete(self) -> None:
        self.complete = True


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    base_path: str
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"control URL must be http(s)://host[:port], got {url!r}")
        tls = parts.scheme == "https"
        return cls(parts.hostname, parts.port or (443 if tls else 80), parts.path.rstrip("/"), tls)


class HttpClient:
    """One connection per request (`Connection: close`): requests here are rare."""

    def __init__(self, endpoint: Endpoint, token: str | None = None) -> None:
        self.endpoint = endpoint
        self.token = token
        # https: the context (pinned to the mesh CA by proxy/bootstrap.py, else the system's)
        # and a check of the verified peer, run before a byte of the request is sent.
        self.ssl: ssl.SSLContext | None = None
        self.check_peer: Callable[[Any], object] | None = None

    def _head(self, method: str, path: str, body: bytes | None) -> bytes:
        ep = self.endpoint
        lines = [
            f"{method} {ep.base_path}{path} HTTP/1.1",
            f"Host: {ep.host}:{ep.port}",
            "Connection: close",
            "Accept: application/json",
        ]
        if self.token:
            lines.append(f"Authorization: Bearer {self.token}")
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _open(
        self, method: str, path: str, body: bytes | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            ctx = self.ssl
            if ctx is None and self.endpoint.tls:
                ctx = self.ssl = ssl.create_default_context()
            reader, writer = await asyncio.open_connection(
                self.endpoint.host, self.endpoint.port, ssl=ctx
            )
        except (OSError, ssl.SSLError) as exc:
            raise ControlError(f"cannot connect to control plane: {exc}") from exc
        if self.check_peer is not None:
            try:
                self.check_peer(writer.get_extra_info("ssl_object"))
            except ConnectionError as exc:
                writer.close()
                raise ControlError(f"control plane identity: {exc}") from exc
        writer.write(self._head(method, path, body) + (body or b""))
        return reader, writer

    async def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        time_limit: float = REQUEST_TIMEOUT,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON body or None). `raw`: a body
        already encoded as JSON (e.g. OTLP spans)."""
        body = raw if raw is not None else None if payload is None else json.dumps(payload).encode()
        try:
            async with asyncio.timeout(time_limit):
                reader, writer = await self._open(method, path, body)
                try:
                    resp = _Response()
                    parser = httptools.HttpResponseParser(resp)
                    while not resp.complete:
                        data = await reader.read(65536)
                        if not data:
                            # Close-delimited bodies end at EOF.
                            if resp.headers_done and "content-length" not in resp.headers:
                                break
                            raise ControlError("control plane closed the connection early")
                        parser.feed_data(data)
                    resp.status = parser.get_status_code()
                finally:
                    writer.close()
        except TimeoutError as exc:
            raise ControlError(f"{method} {path}: timed out after {time_limit}s") from exc
        except (OSError, httptools.HttpParserError) as exc:
            raise ControlError(f"{method} {path}: {exc}") from exc
        try:
            decoded = json.loads(resp.body) if resp.body else None
        except ValueError:
            decoded = None
        return resp.status, decoded

    async def stream_lines(
        self, path: str, idle_timeout: float = STREAM_IDLE_TIMEOUT
    ) -> AsyncIterator[bytes]:
        """GET a chunked NDJSON stream and yield its lines; raises ControlError on an
        error status, a dead peer (no bytes for `idle_timeout`) or the end of the stream."""
        lines: list[bytes] = []
        pending = bytearray()

        def on_chunk(data: bytes) -> None:
            pending.extend(data)
            if len(pending) > MAX_RESPONSE_BYTES:
                raise ControlError("stream line too long")
            while (nl := pending.find(b"\n")) >= 0:
                lines.append(bytes(pending[:nl]))
                del pending[: nl + 1]

        resp = _Response(on_chunk=on_chunk)
        parser = httptools.HttpResponseParser(resp)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                reader, writer = await self._open("GET", path, None)
        except TimeoutError as exc:
            raise ControlError("stream connect timed out") from exc
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(65536), idle_timeout)
                except TimeoutError as exc:
                    raise ControlError(f"no stream data for {idle_timeout}s") from exc
                except OSError as exc:
                    raise ControlError(f"stream read failed: {exc}") from exc
                if not data:
                    raise ControlError("control plane closed the stream")
                if not resp.headers_done:
                    resp.on_chunk = None  # an error status carries a JSON body, not lines
                try:
                    parser.feed_data(data)
                except httptools.HttpParserError as exc:
                    raise ControlError(f"bad stream framing: {exc}") from exc
                if resp.headers_done and resp.on_chunk is None:
                    status = parser.get_status_code()
                    if status != 200:
                        raise ControlError(f"stream refused: {status} {bytes(resp.body)[:200]!r}")
                    resp.on_chunk = on_chunk
                    on_chunk(bytes(resp.body))
                    resp.body.clear()
                while lines:
                    yield lines.pop(0)
                if resp.complete:
                    raise ControlError("control plane ended the stream")
        finally:
            writer.close()


# --- the client ------------------------------------------------------------------------------


class SnapshotSink(Protocol):
    """What the stream feeds: the runtime adapts SnapshotHolder to this."""

    def apply_message(self, msg: dict[str, Any]) -> int | None:
        """Apply a snapshot or delta line; return the version now held (None: rejected)."""


@dataclass
class Registration:
    service: str
    namespace: str
    address: str
    port: int  # the inbound port: where mesh traffic for this instance goes
    app_port: int
    labels: dict[str, str]
    lease_seconds: float
    stats_port: int | None = None  # where Prometheus scrapes /metrics (same address)

    def body(self) -> dict[str, Any]:
        return {
            **({"statsPort": self.stats_port} if self.stats_port else {}),
            "service": self.service,
            "namespace": self.namespace,
            "address": self.address,
            "port": self.port,
            "appPort": self.app_port,
            "labels": self.labels,
            "leaseSeconds": self.lease_seconds,
        }


class ControlClient:
    def __init__(
        self,
        control_url: str,
        proxy_id: str,
        sink: SnapshotSink,
        *,
        registration: Registration | None,
        watch: list[str],
        is_healthy: Callable[[], bool] = lambda: True,
        wait_healthy: Callable[[], Awaitable[None]] | None = None,
        token: str | None = None,
        idle_timeout: float = STREAM_IDLE_TIMEOUT,
        log: Callable[[str], None] = lambda _m: None,
        rng: random.Random | None = None,
    ) -> None:
        self.http = HttpClient(Endpoint.parse(control_url), token)
        self.proxy_id = proxy_id
        self.sink = sink
        self.registration = registration
        self.watching: set[str] = set(watch)
        self.is_healthy = is_healthy
        self.wait_healthy = wait_healthy
        self.idle_timeout = idle_timeout
        self.log = log
        self.rng = rng or random.Random()
        self.report: Callable[[], dict[str, Any]] = dict  # extra heartbeat fields
        self.registered = asyncio.Event()
        self.stream_connected = asyncio.Event()
        self.stopping = False
        self.version: int | None = None
        self.snapshots_received = 0
        self.reconnects = 0
        self.registrations = 0
        self._ack_wanted: int | None = None
        self._ack_event = asyncio.Event()
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        """Wake everyone waiting in `wait_until` (registration or stream state changed)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    @property
    def _pid(self) -> str:
        return quote(self.proxy_id, safe="")

    async def run(self) -> None:
        """Run until cancelled: stream, ACKs and (for sidecars) the lease."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._stream_loop())
            tg.create_task(self._ack_loop())
            if self.registration is not None:
                tg.create_task(self._lease_loop())

    # lease -----------------------------------------------------------------------------------

    async def register(self) -> bool:
        assert self.registration is not None
        status, body = await self.http.request(
            "POST", f"/api/v1/proxies/{self._pid}/register", self.registration.body()
        )
        if status // 100 != 2:
            self.log(f"register refused: {status} {body}")
            return False
        self.registered.set()
        self.registrations += 1
        self._notify()
        return True

    async def _lease_loop(self) -> None:
        assert self.registration is not None
        if self.wait_healthy is not None:
            await self.wait_healthy()  # register only once the app answers
        backoff = Backoff()
        interval = heartbeat_interval(self.registration.lease_seconds)
        while not self.stopping:
            try:
                if not self.registered.is_set():
                    if not await self.register():
                        await asyncio.sleep(backoff.next_delay(self.rng.random()) + interval)
                        continue
                    backoff.reset()
                    await asyncio.sleep(interval)
                    continue
                status, _ = await self.http.request(
                    "POST",
                    f"/api/v1/proxies/{self._pid}/heartbeat",
                    {"healthy": self.is_healthy(), **self.report()},
                    time_limit=interval,
                )
                if status == 404:
                    self.log("lease gone; registering again")
                    self.registered.clear()
                    self._notify()
                    continue
                backoff.reset()
                await asyncio.sleep(interval)
            except ControlError as exc:
                # Keep our registered flag: the lease may still be alive; the next
                # heartbeat tells (404 → register again).
                self.log(f"heartbeat failed: {exc}")
                await asyncio.sleep(min(interval, backoff.next_delay(self.rng.random())))

    async def deregister(self, time_limit: float = 2.0) -> bool:
        self.stopping = True
        if not self.registered.is_set():
            return False
        self.registered.clear()
        try:
            status, _ = await self.http.request(
                "DELETE", f"/api/v1/proxies/{self._pid}", time_limit=time_limit
            )
        except ControlError as exc:
            self.log(f"deregister failed: {exc}")
            return False
        return status // 100 == 2 or status == 404

    # stream ----------------------------------------------------------------------------------

    def _stream_path(self) -> str:
        path = f"/api/v1/proxies/{self._pid}/stream?protocol={PROTOCOL_VERSION}"
        if self.registration is not None:
            path += f"&service={quote(self.registration.service)}"
            path += f"&namespace={quote(self.registration.namespace)}"
        if self.watching:
            path += "&watch=" + ",".join(quote(k, safe="/") for k in sorted(self.watching))
        return path

    async def _stream_loop(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async for line in self.http.stream_lines(self._stream_path(), self.idle_timeout):
                    if not self.stream_connected.is_set():
                        self.stream_connected.set()
                        self._notify()
                    msg = parse_stream_line(line)
                    if msg is None:
                        self.log(f"ignored stream line: {line[:120]!r}")
                        continue
                    if msg["type"] == "heartbeat":
                        continue
                    try:
                        version = self.sink.apply_message(msg)
                    except Exception as exc:
                        # A line we cannot apply leaves our view in doubt: resync from a
                        # fresh full snapshot, keep serving on the last good one meanwhile.
                        raise ControlError(f"cannot apply {msg['type']}: {exc!r}") from exc
                    if version is None:
                        continue
                    backoff.reset()
                    self.version = version
                    self.snapshots_received += 1
                    self._ack_wanted = version
                    self._ack_event.set()
            except ControlError as exc:
                self.log(f"stream: {exc}")
            self.stream_connected.clear()
            self.reconnects += 1
            self._notify()
            await asyncio.sleep(backoff.next_delay(self.rng.random()))

    async def _ack_loop(self) -> None:
        """ACK the latest applied version; bursts collapse into one ACK."""
        backoff = Backoff()
        while True:
            await self._ack_event.wait()
            self._ack_event.clear()
            version = self._ack_wanted
            if version is None:
                continue
            try:
                await self.http.request(
                    "POST", f"/api/v1/proxies/{self._pid}/ack", {"version": version}
                )
                backoff.reset()
            except ControlError as exc:
                self.log(f"ack failed: {exc}")
                await asyncio.sleep(backoff.next_delay(self.rng.random()))
                if self._ack_wanted == version:
                    self._ack_event.set()  # retry unless a newer one superseded it

    # on-demand discovery ---------------------------------------------------------------------

    async def watch(self, service_key: str) -> None:
        """Add a service to our view; the stream then delivers its entry."""
        self.watching.add(service_key)
        status, body = await self.http.request(
            "POST", f"/api/v1/proxies/{self._pid}/watch", {"services": [service_key]}
        )
        if status // 100 != 2:
            raise ControlError(f"watch {service_key} refused: {status} {body}")
