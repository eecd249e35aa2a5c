"""Start the peers from their config templates: the nginx upstream, nginx and HAProxy sidecars."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bench.certs import SERVER_NAME, BenchCerts
from bench.procs import HarnessError, ProcessSet, Started, free_port, wait_for_port

TEMPLATES = Path(__file__).parent / "peers"
BODY_SIZES = {"1k": 1024, "64k": 64 * 1024}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
PLAIN_NGINX = {"listen_tls": "", "server_tls": "", "scheme": "http", "proxy_tls": ""}
PLAIN_HAPROXY = {"bind_tls": "", "server_tls": ""}


def nginx_tls(certs: BenchCerts | None, side: str) -> dict[str, str]:
    """Template values for an nginx sidecar: `side` "inbound" terminates TLS 1.3 (client certs
    required), "outbound" originates it to the next hop (server verified by name)."""
    if certs is None:
        return PLAIN_NGINX
    if side == "inbound":
        server = (
            f"ssl_certificate {certs.server_cert}; ssl_certificate_key {certs.server_key}; "
            f"ssl_client_certificate {certs.ca}; ssl_verify_client on; ssl_protocols TLSv1.3;"
        )
        return {**PLAIN_NGINX, "listen_tls": " ssl", "server_tls": server}
    proxy = (
        f"proxy_ssl_certificate {certs.client_cert}; "
        f"proxy_ssl_certificate_key {certs.client_key}; "
        f"proxy_ssl_trusted_certificate {certs.ca}; proxy_ssl_verify on; "
        f"proxy_ssl_name {SERVER_NAME}; proxy_ssl_server_name on; proxy_ssl_protocols TLSv1.3;"
    )
    return {**PLAIN_NGINX, "scheme": "https", "proxy_tls": proxy}


def haproxy_tls(certs: BenchCerts | None, side: str) -> dict[str, str]:
    """The same for HAProxy: `bind ... ssl` inbound, `server ... ssl` outbound."""
    if certs is None:
        return PLAIN_HAPROXY
    if side == "inbound":
        bind = f" ssl crt {certs.server_pem} ca-file {certs.ca} verify required ssl-min-ver TLSv1.3"
        return {**PLAIN_HAPROXY, "bind_tls": bind}
    server = (
        f" ssl crt {certs.client_pem} ca-file {certs.ca} verify required"
        f" verifyhost {SERVER_NAME} sni str({SERVER_NAME}) ssl-min-ver TLSv1.3"
    )
    return {**PLAIN_HAPROXY, "server_tls": server}


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
    procs: ProcessSet,
    name: str,
    template: str,
    core: int | None,
    next_port: int = 0,
    tls: dict[str, str] | None = None,
) -> tuple[Started, int]:
    nginx = binary("nginx")
    if nginx is None:
        raise FileNotFoundError("nginx is not installed (make system-deps)")
    values: dict[str, str | int] = {"dir": str(procs.workdir), "name": name, "next_port": next_port}
    values.update(tls or PLAIN_NGINX)
    config = procs.workdir / f"{name}.conf"
    cmd = [nginx, "-p", str(procs.workdir), "-e", str(procs.workdir / f"{name}-error.log")]
    cmd += ["-c", str(config)]
    return await _start_peer(procs, name, template, config, cmd, values, core)


async def start_upstream(procs: ProcessSet, core: int | None) -> tuple[Started, int]:
    return await start_nginx(procs, "upstream", "nginx_upstream.conf", core)


async def start_haproxy(
    procs: ProcessSet,
    name: str,
    next_port: int,
    core: int | None,
    tls: dict[str, str] | None = None,
) -> tuple[Started, int]:
    haproxy = binary("haproxy")
    if haproxy is None:
        raise FileNotFoundError("haproxy is not installed (make system-deps)")
    values: dict[str, str | int] = {"dir": str(procs.workdir), "name": name, "next_port": next_port}
    values.update(tls or PLAIN_HAPROXY)
    config = procs.workdir / f"{name}.cfg"
    cmd = [haproxy, "-db", "-f", str(config)]
    return await _start_peer(procs, name, "haproxy_sidecar.cfg", config, cmd, values, core)
