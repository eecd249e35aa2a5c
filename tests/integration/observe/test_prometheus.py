"""A real Prometheus (Debian's `prometheus`) scrapes real sidecars it found through the
control plane's HTTP service discovery; `promtool` lints what /metrics serves."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from asyncio.subprocess import PIPE, STDOUT
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import GOSSAMER, Load, Procs, free_port

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="needs /usr/bin/prometheus and promtool (Debian package `prometheus`; make system-deps)",
)


async def poll(http: httpx.AsyncClient, url: str, done: Any, limit: float = 30.0) -> Any:
    """GET `url` until `done(json)` is truthy: Prometheus has no push notification."""
    last: Any = None
    try:
        async with asyncio.timeout(limit):
            while True:
                try:
                    resp = await http.get(url)
                    last = resp.json() if resp.status_code == 200 else resp.text
                    if resp.status_code == 200 and done(last):
                        return last
                except httpx.TransportError as exc:
                    last = repr(exc)
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"{url} never got there; last answer: {last}") from None


async def run(argv: list[str], stdin: str = "") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=PIPE, stdout=PIPE, stderr=STDOUT)
    out, _ = await proc.communicate(stdin.encode())
    return proc.returncode or 0, out.decode()


def query_value(answer: dict[str, Any]) -> float | None:
    result = answer.get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if result else None


async def test_real_prometheus_scrapes_sidecars_found_by_discovery(tmp_path: Path) -> None:
    procs = Procs(tmp_path)
    try:
        control = await procs.control()
        port = control.port("port")
        control_url = f"http://127.0.0.1:{port}"
        echo = await procs.instance(port, "echo", "echo-1", labels="version=v1")
        client = await procs.instance(port, "client", "client-1", extra=["--upstream", "echo=0"])
        load = Load(client.port("outbound"), "echo", workers=2)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(load.run())
            await load.requests(60)
            load.stop()
        assert load.failures == []
        sent = load.ok

        # promtool lints the exposition of a sidecar that served traffic.
        async with httpx.AsyncClient(timeout=10) as http:
            text = (await http.get(f"http://127.0.0.1:{client.port('stats')}/metrics")).text
        code, lint = await run([str(PROMTOOL), "check", "metrics"], text)
        assert code == 0, lint

        code, config = await run(
            [
                *GOSSAMER,
                "prometheus-config",
                "--interval",
                "1s",
                "--control",
                control_url,
                "--token-file",
                str(tmp_path / "control" / "credentials" / "admin.token"),
            ]
        )
        assert code == 0, config
        (tmp_path / "prometheus.yml").write_text(config)
        code, check = await run(
            [str(PROMTOOL), "check", "config", str(tmp_path / "prometheus.yml")]
        )
        assert code == 0, check

        web = f"127.0.0.1:{free_port()}"
        await procs.spawn("prometheus", [
            str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address={web}",
        ])  # fmt: skip
        api = f"http://{web}/api/v1"
        async with httpx.AsyncClient(timeout=5) as http:
            targets = await poll(
                http,
                f"{api}/targets",
                lambda a: (
                    len(a["data"]["activeTargets"]) == 2
                    and all(t["health"] == "up" for t in a["data"]["activeTargets"])
                ),
            )
            labels = {t["labels"]["service"]: t["labels"] for t in targets["data"]["activeTargets"]}
            assert labels["echo"]["version"] == "v1" and labels["echo"]["namespace"] == "default"
            assert labels["echo"]["instance"].startswith("echo-")  # the proxy id
            assert labels["client"]["instance"].startswith("client-")
            # The load has stopped: the scraped counter settles at exactly what was sent.
            query = 'sum(gossamer_requests_total{service="client",direction="outbound"})'
            answer = await poll(
                http, f"{api}/query?query={query}", lambda a: query_value(a) == sent
            )
            assert query_value(answer) == sent
            inbound = 'sum(gossamer_requests_total{service="echo",direction="inbound"})'
            answer = await poll(
                http, f"{api}/query?query={inbound}", lambda a: query_value(a) == sent
            )
        assert echo.proc.returncode is None
    finally:
        await procs.close()


def test_prometheus_config_points_at_discovery() -> None:
    out = subprocess.run(
        [*GOSSAMER, "prometheus-config", "--control", "http://10.0.0.5:15010/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "url: http://10.0.0.5:15010/api/v1/prometheus/targets" in out
