"""A real control plane with the dashboard mounted, on port 0, in its own thread and event
loop, so that tests can drive a browser with Playwright's sync API meanwhile. It runs with
its security on (admin credential in the data dir, mesh CA, STRICT mTLS), as
`gossamer control` does. Sidecars are either the real `ControlClient` alone (register,
heartbeat, snapshot stream, ACK) or real `gossamer run` processes carrying real traffic."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from gossamer.control.ca.tokens import TokenScope
from gossamer.control.security import Security
from gossamer.control.server import ControlServer, running
from gossamer.proxy.control_client import ControlClient, Registration
from gossamer.store.sqlite import SQLiteStore
from gossamer.ui import add_dashboard_routes


class DashboardControlServer(ControlServer):
    """The control plane exactly as it builds its app, plus the dashboard routes
    (what server.py's `_app` will do once it calls add_dashboard_routes)."""

    def _app(self) -> web.Application:
        app = super()._app()
        add_dashboard_routes(app)
        return app


class VersionHolder:
    """The snapshot sink of a sidecar that only needs to ACK: it keeps the version."""

    def __init__(self) -> None:
        self.version: int | None = None

    def apply_message(self, msg: dict[str, Any]) -> int | None:
        version = msg.get("version")
        if isinstance(version, int):
            self.version = version
        return self.version


class Mesh:
    """Starts on `start()`, stops on `stop()`; `url` is the control plane's base URL."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._thread = threading.Thread(target=self._main, name="control-plane", daemon=True)
        self.http = httpx.Client(timeout=10.0)
        self.admin_token = ""
        self.security: Security | None = None
        self.processes: list[Sidecar] = []

    def start(self) -> Mesh:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._failure is not None:
            raise RuntimeError("control plane failed to start") from self._failure
        if not self.url:
            raise RuntimeError("control plane did not become ready in 30 s")
        token_file = self.data_dir / "credentials" / "admin.token"
        self.admin_token = token_file.read_text().strip()
        self.http.headers["Authorization"] = f"Bearer {self.admin_token}"
        return self

    def stop(self) -> None:
        for sidecar in self.processes:
            sidecar.stop()
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
        self.http.close()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        store = SQLiteStore(self.data_dir / "gossamer.db")
        security = self.security = Security.open(self.data_dir, "cluster.local")
        server = DashboardControlServer(store, port=0, heartbeat_seconds=1.0, security=security)
        try:
            async with running(server), asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                self.url = f"http://127.0.0.1:{server.port}"
                self._ready.set()
                await self._stop.wait()
                raise _Stopping
        except* _Stopping:
            pass
        finally:
            await store.close()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the control plane's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_sidecar(self, proxy_id: str, service: str, labels: dict[str, str], port: int) -> None:
        """A real sidecar control link: registers, heartbeats, streams and ACKs until stop."""

        async def launch() -> None:
            assert self._tasks is not None
            client = ControlClient(
                self.url,
                proxy_id,
                VersionHolder(),
                registration=Registration(
                    service, "default", "127.0.0.1", port, port + 1, labels, 10.0
                ),
                watch=[],
                token=self.proxy_token(service),
            )
            self._tasks.create_task(client.run(), name=f"sidecar-{proxy_id}")
            await client.wait_until(
                lambda: client.registered.is_set() and client.stream_connected.is_set()
            )

        self.run(launch())

    def proxy_token(self, service: str) -> str:
        """A sidecar's own credential, scoped to its service (as `gossamer token create`)."""
        assert self.security is not None
        text, _ = self.security.credentials.issue(
            TokenScope.proxy("default", service), 3600.0, time.time()
        )
        return text

    def spawn_sidecar(
        self, name: str, service: str, version: str, extra: tuple[str, ...] = ()
    ) -> Sidecar:
        """`gossamer run` with the demo echo app: a real sidecar (mTLS, telemetry push every
        200 ms), found ready by its own ready line. Its token comes from the data dir."""
        argv = [sys.executable, "-m", "gossamer.cli.main", "run", "--service", service,
                "--port", str(free_port()), "--control", self.url, "--labels", f"version={version}",
                "--outbound-port", "0", "--inbound-port", "0", "--stats-port", "0",
                "--admin-port", "0", "--report-interval", "200ms", "--drain-grace", "1s",
                "--app-grace", "1s", *extra,
                "--", sys.executable, "-m", "gossamer.demo.apps", "echo"]  # fmt: skip
        env = {**os.environ, "GOSSAMER_DATA_DIR": str(self.data_dir), "DEMO_INSTANCE": name}
        log = open(self.data_dir / f"{name}.log", "wb")  # closed in stop()
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
        sidecar = Sidecar(name, proc, log)
        self.processes.append(sidecar)
        sidecar.wait_ready()
        return sidecar

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.http.request(method, self.url + path, json=body)
        return response.status_code, response.json() if response.content else None

    def apply(self, *documents: dict[str, Any]) -> Any:
        status, body = self.call("POST", "/api/v1/apply", {"documents": list(documents)})
        assert status == 200, body
        return body


class Sidecar:
    """A `gossamer run` process group; `ports` from its ready line."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Any) -> None:
        self.name = name
        self.proc = proc
        self.log = log
        self.ports: dict[str, int] = {}
        self._drain = threading.Thread(target=self._copy_output, daemon=True)

    def _copy_output(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.log.write(raw)

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:  # blocks on the child's own output, no polling
            line = raw.decode(errors="replace")
            if line.startswith("gossamer-proxy ready"):
                for part in line.split():
                    key, sep, value = part.partition("=")
                    if sep and value.isdigit():
                        self.ports[key] = int(value)
                # Keep draining: a full pipe would block the sidecar's next write.
                self._drain.start()
                return
        raise RuntimeError(f"sidecar {self.name} exited before ready; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        if self._drain.is_alive():
            self._drain.join(timeout=5)
        self.log.close()


class Load:
    """Steady requests from a caller's app side through its sidecar to `host` until stopped."""

    def __init__(self, outbound_port: int, host: str) -> None:
        self.url = f"http://127.0.0.1:{outbound_port}/items"
        self.host = host
        self.stopped = threading.Event()
        self.answers: dict[int, int] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as http:
            while not self.stopped.is_set():
                status = http.get(self.url, headers={"Host": self.host}).status_code
                self.answers[status] = self.answers.get(status, 0) + 1
                self.stopped.wait(0.02)  # about 40 rps: visible, cheap on two cores

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


class _Stopping(Exception):
    """Leaves the task group so every sidecar task is cancelled with it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"port": 8080}]},
    }


def split_route(name: str, parent: str, weights: dict[str, int]) -> dict[str, Any]:
    backends = [
        {"name": parent, "labels": {"version": version}, "weight": weight}
        for version, weight in weights.items()
    ]
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"parentRefs": [{"name": parent}], "rules": [{"backendRefs": backends}]},
    }


def calls_route(name: str, parent: str, backend: str) -> dict[str, Any]:
    """A route attached to `parent` that sends everything to `backend`."""
    return {
        "apiVersion": "gossamer.dev/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"parentRefs": [{"name": parent}], "rules": [{"backendRefs": [{"name": backend}]}]},
    }


def open_page(page: Any, mesh: Mesh, hash_: str = "") -> None:
    """Go to the dashboard, logging in with the admin credential when the page asks."""
    from playwright.sync_api import expect

    page.goto(f"{mesh.url}/{hash_}")
    form_or_live = page.locator("#login-token, #live-status:has-text('Live')")
    expect(form_or_live.first).to_be_visible()
    if page.locator("#login-token").count():
        page.fill("#login-token", mesh.admin_token)
        page.click("#login-submit")
    expect(page.locator("#live-status")).to_contain_text("Live")
