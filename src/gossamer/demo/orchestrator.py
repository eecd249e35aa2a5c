"""`gossamer demo`: a control plane, four sidecars with their apps, and a gentle load.

Every child runs in its own session (process group), so Ctrl-C can stop each one with
everything it started, and nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from gossamer.demo.edge import EDGE_PORT, DemoIssuer, banner_lines, edge_documents
from gossamer.demo.loadgen import LoadGenerator, get_via_proxy

READY_TIMEOUT = 60.0
STOP_GRACE = 8.0
# The canary the demo starts on reviews v2 (healthy, so it promotes in about a minute and a
# half at the demo's load). Seconds, not minutes, so one sees every step.
CANARY_ARGS = ("--to", "v2", "--steps", "10,25,50,100", "--interval", "20s",
               "--max-error-rate", "5%", "--min-requests", "10")  # fmt: skip


def free_port(preferred: int = 0) -> int:
    """`preferred` if it is free on loopback, else one the kernel picks."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port")


def mesh_yaml() -> str:
    return resources.files("gossamer.demo").joinpath("mesh.yaml").read_text()


def gossamer_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gossamer.cli.main", *args]


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    log_path: Path
    ready: dict[str, str] = field(default_factory=dict)


@dataclass
class Demo:
    data_dir: Path
    control_port: int
    rps: float = 5.0
    up: bool = False
    children: list[Child] = field(default_factory=list)
    issuer: DemoIssuer = field(default_factory=DemoIssuer)  # signs the edge's demo tokens
    edge_port: int = 0

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    async def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        log_path = self.data_dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_fd,
                stdin=asyncio.subprocess.DEVNULL,
                # Sidecars find the admin credential here and get tokens for their service.
                env={
                    **os.environ,
                    "GOSSAMER_DATA_DIR": str(self.data_dir / "control"),
                    **(env or {}),
                },
                start_new_session=True,  # its own group: we stop it with all it started
            )
        finally:
            os.close(log_fd)
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    async def wait_ready(self, child: Child, marker: bytes) -> dict[str, str]:
        """Read the child's stdout until its ready line; return the line's key=value pairs."""
        assert child.proc.stdout is not None
        async with asyncio.timeout(READY_TIMEOUT):
            while True:
                line = await child.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{child.name} exited before ready; see {child.log_path}")
                if line.startswith(marker):
                    break
        child.ready = dict(part.split("=", 1) for part in line.decode().split() if "=" in part)
        return child.ready

    async def start_control(self) -> None:
        child = await self.spawn(
            "control",
            gossamer_cmd(
                "control",
                "--listen",
                f"127.0.0.1:{self.control_port}",
                "--data-dir",
                str(self.data_dir / "control"),
            ),
        )
        await self.wait_ready(child, b"gossamer control plane listening on")

    def apply_mesh(self) -> None:
        from gossamer.client.control import ControlClient
        from gossamer.client.credentials import local_admin_token
        from gossamer.model.parse import load_yaml

        documents = [doc for doc, _source, _lines in load_yaml(mesh_yaml(), "demo/mesh.yaml")]
        admin = local_admin_token(self.data_dir / "control")
        with ControlClient(self.control_url, token=admin) as client:
            client.apply(documents)

    async def start_service(self, name: str, version: str | None = None) -> Child:
        app_port = free_port()
        labels = ["--labels", f"version={version}"] if version else []
        sidecar = ["--control", self.control_url, "--lease", "6s", "--health", "http:/healthz"]
        for flag in ("--outbound-port", "--inbound-port", "--stats-port", "--admin-port"):
            sidecar += [flag, "0"]
        app = ["--", sys.executable, "-m", "gossamer.demo.apps", name]
        child = await self.spawn(
            f"{name}-{version}" if version else name,
            gossamer_cmd(
                "run", "--service", name, "--port", str(app_port), *labels, *sidecar, *app
            ),
            env={"DEMO_VERSION": version or "v1"},
        )
        child.ready["app"] = str(app_port)
        return child

    async def start(self) -> Child:
        """Bring the whole mesh up; return the frontend's sidecar."""
        await self.start_control()
        await asyncio.to_thread(self.apply_mesh)
        children = [
            await self.start_service("catalog"),
            await self.start_service("reviews", "v1"),
            await self.start_service("reviews", "v2"),
            await self.start_service("frontend"),
        ]
        for child in children:
            app_port = child.ready["app"]
            await self.wait_ready(child, b"gossamer-proxy ready")
            child.ready["app"] = app_port
        frontend = children[-1]
        await first_answer(int(frontend.ready["outbound"]))
        await self.start_edge()
        await self.start_canary()
        return frontend

    async def start_edge(self) -> None:
        """The gateway in front of the mesh (demo/edge.py): a JWT route and a rate limit."""
        from gossamer.client.control import ControlClient
        from gossamer.client.credentials import local_admin_token

        admin = local_admin_token(self.data_dir / "control")
        with ControlClient(self.control_url, token=admin) as client:
            await asyncio.to_thread(client.apply, edge_documents(self.issuer))
        self.edge_port = free_port(EDGE_PORT)
        child = await self.spawn("gateway", gossamer_cmd(
            "gateway", "--name", "edge", "--control", self.control_url, "--address", "127.0.0.1",
            "--listener-port", f"http={self.edge_port}", "--stats-port", "0",
            "--access-log", str(self.data_dir / "logs" / "gateway-access.log")))  # fmt: skip
        await self.wait_ready(child, b"gossamer-gateway ready")

    async def start_canary(self) -> str:
        """`gossamer canary start reviews ...` with the real CLI; returns what it printed."""
        proc = await asyncio.create_subprocess_exec(
            *gossamer_cmd(
                "canary", "start", "reviews", *CANARY_ARGS, "--control", self.control_url
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "GOSSAMER_DATA_DIR": str(self.data_dir / "control")},
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"gossamer canary start reviews failed: {out.decode().strip()}")
        return out.decode()

    async def stop(self) -> None:
        """SIGTERM every group (sidecars first, the control plane last), then SIGKILL."""
        for child in reversed(self.children):
            await stop_group(child.proc, STOP_GRACE)


async def first_answer(outbound_port: int, limit: float = 15.0) -> None:
    """Ready means a request goes through: registrations reach every view in a few ms."""
    async with asyncio.timeout(limit):
        while True:
            try:
                status, _ = await get_via_proxy("127.0.0.1", outbound_port, "frontend")
            except (OSError, ValueError):
                status = 0
            if status == 200:
                return
            await asyncio.sleep(0.1)


async def stop_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        pass
    # Whatever is left in the group (an app that ignored SIGTERM) goes now.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


def banner(demo: Demo, frontend: Child, mesh_file: Path) -> str:
    out = frontend.ready["outbound"]
    ctl = demo.control_url
    return f"""
gossamer demo is up: control plane, frontend → catalog + reviews (v1, v2), and a canary
of reviews v2 under way: {" ".join(("gossamer canary start reviews", *CANARY_ARGS))}

  control plane   {ctl}   (export GOSSAMER_CONTROL={ctl})
  dashboard       {ctl}/   (log in with the admin credential below)
  credentials     export GOSSAMER_DATA_DIR={demo.data_dir / "control"}   (the CLI then finds
                  the admin credential; the dashboard's login takes the token in
                  {demo.data_dir / "control" / "credentials" / "admin.token"})
  frontend        curl -sx http://127.0.0.1:{out} http://frontend/     (through the mesh)
  frontend stats  http://127.0.0.1:{frontend.ready["stats"]}/metrics
  frontend admin  http://127.0.0.1:{frontend.ready["admin"]}/config
  logs            {demo.data_dir / "logs"}
{banner_lines(demo.edge_port, demo.issuer.token())}
Try next (after the two exports above):
  gossamer canary status reviews           # step, weights, measured vs thresholds, history
  gossamer stat                            # success rate, rps, p50/p95/p99 per service
  gossamer stat reviews --routes
  gossamer edges                           # who calls whom, and whether mTLS protects it
  gossamer top reviews                     # the busiest paths
  gossamer tap reviews --limit 10          # live requests through reviews' sidecars
  gossamer explain route reviews GET /reviews/1   # which rule, which backend, why
  gossamer services
  gossamer endpoints reviews
  gossamer proxies
  gossamer canary abort reviews            # or promote; then try a split:
  gossamer split reviews v1=50 v2=50
  edit {mesh_file} and: gossamer apply -f {mesh_file}

Load: about {demo.rps:g} requests/s on the frontend. Ctrl-C stops everything.
"""


async def _until_stopped(demo: Demo, stop: asyncio.Event) -> None:
    frontend = await demo.start()
    demo.up = True
    mesh_file = demo.data_dir / "mesh.yaml"
    mesh_file.write_text(mesh_yaml())
    print(banner(demo, frontend, mesh_file), flush=True)
    out = frontend.ready["outbound"]
    print(
        f"gossamer-demo ready control={demo.control_url} frontend-proxy=http://127.0.0.1:{out}"
        f" gateway=http://127.0.0.1:{demo.edge_port}",
        flush=True,
    )
    load = LoadGenerator("127.0.0.1", int(out), "frontend", demo.rps)
    async with asyncio.TaskGroup() as tg:
        load_task = tg.create_task(load.run(report=lambda line: print(line, flush=True)))
        await stop.wait()
        load_task.cancel()
    print(f"\nstopping… {load.summary()}", flush=True)


async def _cancel_if_stopped_early(
    demo: Demo, stop: asyncio.Event, main: asyncio.Task[None]
) -> None:
    await stop.wait()
    if not demo.up:
        main.cancel()


async def run_demo(data_dir: Path | None = None, rps: float = 5.0) -> int:
    temporary = data_dir is None
    base = Path(tempfile.mkdtemp(prefix="gossamer-demo-")) if data_dir is None else data_dir
    base.mkdir(parents=True, exist_ok=True)
    demo = Demo(base, free_port(15010), rps)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        async with asyncio.TaskGroup() as tg:
            main = tg.create_task(_until_stopped(demo, stop))
            tg.create_task(_cancel_if_stopped_early(demo, stop, main))
        if main.cancelled():  # Ctrl-C while starting up
            code = 130
    except* Exception as group:
        for exc in group.exceptions:
            print(f"demo failed: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        await demo.stop()
        if temporary:
            shutil.rmtree(base, ignore_errors=True)
    return code
