"""Start `gossamer control` for the bench and talk to its API."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.procs import HarnessError, ProcessSet, Started

CONTROL_READY = (b"gossamer-control ready", b"control plane listening on http")
PROXY_READY = (b"gossamer-proxy ready",)
_URL = re.compile(r"https?://[\w.\-\[\]:]+")


def gossamer_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gossamer.cli.main", *args]


def ready_fields(line: bytes) -> dict[str, str]:
    """`gossamer-x ready a=1 b=2` → {"a": "1", "b": "2"}."""
    text = line.decode(errors="replace")
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def control_url(line: bytes) -> str:
    """The API base URL from the control plane's ready line (a URL, or a port field)."""
    text = line.decode(errors="replace")
    found = _URL.search(text)
    if found:
        return found.group(0).rstrip("/")
    fields = ready_fields(line)
    for key in ("port", "api", "listen"):
        value = fields.get(key, "")
        port = value.rsplit(":", 1)[-1]
        if port.isdigit():
            return f"http://127.0.0.1:{port}"
    raise HarnessError(f"no address in the control plane's ready line: {text.strip()!r}")


@dataclass(frozen=True)
class ControlPlane:
    started: Started
    url: str
    headers: dict[str, str]  # the admin credential, when the control plane has one

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers=self.headers, timeout=aiohttp.ClientTimeout(300))

    async def sidecar_token(self, service: str) -> str | None:
        """A token scoped to `service`, as an operator hands one to a sidecar."""
        if not self.headers:
            return None  # a control plane without credentials: nothing to present
        async with self.session() as session:
            body = {"service": service, "namespace": "default", "ttlSeconds": 86400}
            created = await api(session, "POST", f"{self.url}/api/v1/tokens", body)
        # The text after '#' is the CA fingerprint a sidecar pins, not part of the bearer
        # credential (the control plane refuses the whole text as a bearer token today).
        return str(created["token"]).split("#", 1)[0]


async def start_control(
    procs: ProcessSet, core: int | None, mtls: str | None = None, name: str = "control"
) -> ControlPlane:
    """`mtls`: the mesh-wide mode (strict | permissive | disable); None: the default."""
    data_dir = procs.workdir / f"{name}-data"
    data_dir.mkdir(exist_ok=True)
    cmd = gossamer_cmd("control", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir))
    if mtls is not None:
        cmd += ["--mtls", mtls]
    started, line = await procs.start_ready(name, cmd, CONTROL_READY, core=core)
    return ControlPlane(started, control_url(line), token_headers(data_dir))


def token_headers(data_dir: Path) -> dict[str, str]:
    """The admin credential the control plane leaves in its data dir, when it has one."""
    for name in ("credentials/admin.token", "admin.token"):
        path = data_dir / name
        if path.is_file():
            return {"Authorization": f"Bearer {path.read_text().strip()}"}
    return {}


async def api(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> dict[str, Any]:
    async with session.request(method, url, json=body) as response:
        data = await response.json(content_type=None)
        if response.status >= 300:
            raise HarnessError(f"{method} {url} -> {response.status}: {str(data)[:500]}")
        return dict(data)
