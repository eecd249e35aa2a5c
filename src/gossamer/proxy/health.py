"""Health probes of the local app: TCP connect (default) or HTTP GET on a path.

`HealthTracker` decides (rise/fall thresholds, no I/O); `probe_once` does one probe;
`HealthProber.run` loops them. The sidecar registers only once the app has answered, and
reports the current verdict in every heartbeat.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeSpec:
    kind: str  # "tcp" | "http"
    path: str = "/"

    @classmethod
    def parse(cls, text: str) -> ProbeSpec:
        """`tcp` or `http:/healthz` (path defaults to `/`)."""
        if text == "tcp":
            return cls("tcp")
        if text == "http" or text.startswith("http:"):
            path = text[5:] or "/"
            if not path.startswith("/") or any(c in path for c in " \r\n"):
                raise ValueError(f"health path must start with '/' and hold no spaces: {path!r}")
            return cls("http", path)
        raise ValueError(f"health probe must be 'tcp' or 'http:/path', got {text!r}")


class HealthTracker:
    """Healthy after `rise` consecutive successes, unhealthy after `fall` failures.

    Starts unhealthy: the app has not answered yet. `ever_healthy` latches the first time
    the app answers (the moment the sidecar may register).
    """

    def __init__(self, rise: int = 1, fall: int = 3) -> None:
        self.rise = rise
        self.fall = fall
        self.healthy = False
        self.ever_healthy = False
        self._streak = 0  # >0: consecutive successes, <0: consecutive failures

    def record(self, ok: bool) -> bool:
        """Record one probe result; return True when the verdict changed."""
        if ok:
            self._streak = self._streak + 1 if self._streak > 0 else 1
        else:
            self._streak = self._streak - 1 if self._streak < 0 else -1
        before = self.healthy
        if not self.healthy and self._streak >= self.rise:
            self.healthy = True
            self.ever_healthy = True
        elif self.healthy and -self._streak >= self.fall:
            self.healthy = False
        return before != self.healthy


async def probe_once(spec: ProbeSpec, host: str, port: int, time_limit: float) -> bool:
    """One probe. TCP: the connect succeeds. HTTP: GET answers a status below 500."""
    try:
        async with asyncio.timeout(time_limit):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                if spec.kind == "tcp":
                    return True
                writer.write(
                    f"GET {spec.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    "User-Agent: gossamer-health\r\nConnection: close\r\n\r\n".encode("latin-1")
                )
                status_line = await reader.readline()
                parts = status_line.split(None, 2)
                if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                    return False
                return parts[1].isdigit() and 200 <= int(parts[1]) < 500
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError):
        return False


class HealthProber:
    def __init__(
        self,
        spec: ProbeSpec,
        host: str,
        port: int,
        *,
        interval: float = 1.0,
        startup_interval: float = 0.05,
        timeout: float = 1.0,
        tracker: HealthTracker | None = None,
    ) -> None:
        self.spec = spec
        self.host = host
        self.port = port
        self.interval = interval
        # Probe fast until the app first answers: start-up is where latency is felt.
        self.startup_interval = startup_interval
        self.timeout = timeout
        self.tracker = tracker or HealthTracker()
        self.answered = asyncio.Event()
        self._verdict_changed = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return self.tracker.healthy

    async def wait_answered(self) -> None:
        await self.answered.wait()

    async def wait_for(self, healthy: bool) -> None:
        while self.tracker.healthy != healthy:
            await self._verdict_changed.wait()
            self._verdict_changed.clear()

    async def run(self) -> None:
        while True:
            ok = await probe_once(self.spec, self.host, self.port, self.timeout)
            if self.tracker.record(ok):
                self._verdict_changed.set()
            if self.tracker.ever_healthy:
                self.answered.set()
            await asyncio.sleep(self.interval if self.answered.is_set() else self.startup_interval)
