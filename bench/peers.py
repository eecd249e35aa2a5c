"""Start the peers from their config templates: the nginx upstream, nginx and HAProxy sidecars."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bench.procs import HarnessError, ProcessSet, Started, free_port, wait_for_port

TEMPLATES = Path(__file__).parent / "peers"
BODY_SIZES = {"1k": 1024, "64k": 64 * 1024}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def render(template: str, values: dict[str, str | int]) -> str:
    """Fill `{{name}}` placeholders; a placeholder without a value is an error, not a blank."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template placeholder {{{{{key}}}}} has no value")
        return str(values[key])

    return _PLACEHOLDER.sub(fill, template)


def binary(name: str) -> str | None:
    return shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )


def prepare_workdir(workdir: Path) -> None:
    """Bodies to serve and temp dirs; readable by nginx's unprivileged worker when run as root."""
    workdir.chmod(0o755)
    (workdir / "tmp").mkdir(exist_ok=True)
    www = workdir / "www"
    www.mkdir(exist_ok=True)
    www.chmod(0o755)
    for name, size in BODY_SIZES.items():
        path = www / name
        path.write_bytes(bytes(ord("a") + i % 26 for i in range(size)))
        path.chmod(0o644)


def _write_config(config: Path, template: str, values: dict[str, str | int]) -> None:
    config.write_text(render((TEMPLATES / template).read_text(), values))


async def _start_peer(
    procs: ProcessSet,
    name: str,
    template: str,
    config: Path,
    cmd: list[str],
    values: dict[str, str | int],
    core: int | None,
) -> tuple[Started, int]:
    """Render the config on a free port and start it; retry on a fresh port if another
    process took that one between our probe and the peer's bind."""
    for attempt in range(1, 4):
        port = free_port()
        _write_config(config, template, {**values, "port": port})
        started = await procs.start(name, cmd, core=core)
        try:
            await wait_for_port(port, started.proc)
            if started.proc.returncode is None:  # it is ours that listens, not a stranger
                return started, port
        except (RuntimeError, TimeoutError) as exc:
            if attempt == 3:
                raise HarnessError(f"{name} did not start: {exc}\n{started.log_tail()}") from exc
        await procs.stop(started)
    raise HarnessError(f"{name} did not start on three free ports:\n{started.log_tail()}")


async def start_nginx(
    procs: ProcessSet, name: str, template: str, core: int | None, next_port: int = 0
) -> tuple[Started, int]:
    nginx = binary("nginx")
    if nginx is None:
        raise FileNotFoundError("nginx is not installed (make system-deps)")
    values: dict[str, str | int] = {"dir": str(procs.workdir), "name": name, "next_port": next_port}
    config = procs.workdir / f"{name}.conf"
    cmd = [nginx, "-p", str(procs.workdir), "-e", str(procs.workdir / f"{name}-error.log")]
    cmd += ["-c", str(config)]
    return await _start_peer(procs, name, template, config, cmd, values, core)


async def start_upstream(procs: ProcessSet, core: int | None) -> tuple[Started, int]:
    return await start_nginx(procs, "upstream", "nginx_upstream.conf", core)


async def start_haproxy(
    procs: ProcessSet, name: str, next_port: int, core: int | None
) -> tuple[Started, int]:
    haproxy = binary("haproxy")
    if haproxy is None:
        raise FileNotFoundError("haproxy is not installed (make system-deps)")
    values: dict[str, str | int] = {"dir": str(procs.workdir), "name": name, "next_port": next_port}
    config = procs.workdir / f"{name}.cfg"
    cmd = [haproxy, "-db", "-f", str(config)]
    return await _start_peer(procs, name, "haproxy_sidecar.cfg", config, cmd, values, core)
