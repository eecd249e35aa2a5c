"""The sidecar runtime's parts on their own: back-off, stream lines, health, CLI, admin."""

from __future__ import annotations

import asyncio
import random

import pytest

from gossamer.proxy.admin import AdminServer, json_reply, text_reply
from gossamer.proxy.cli import parse_args, parse_duration
from gossamer.proxy.control_client import Backoff, heartbeat_interval, parse_stream_line
from gossamer.proxy.health import HealthProber, HealthTracker, ProbeSpec, probe_once
from gossamer.proxy.launcher import app_environment, exit_code


def test_backoff_grows_is_capped_and_resets() -> None:
    b = Backoff(base=0.1, cap=5.0)
    ceilings = [b.next_delay(0.999999) for _ in range(10)]
    assert ceilings[0] == pytest.approx(0.1, rel=1e-3)
    assert ceilings[3] == pytest.approx(0.8, rel=1e-3)
    assert max(ceilings) == pytest.approx(5.0, rel=1e-3)
    rng = random.Random(7)
    jittered = [b.next_delay(rng.random()) for _ in range(50)]
    assert all(0.05 <= d <= 5.0 for d in jittered)
    assert len({round(d, 6) for d in jittered}) > 40  # full jitter spreads reconnects
    b.reset()
    assert b.next_delay(0.999999) == pytest.approx(0.1, rel=1e-3)


def test_heartbeat_every_third_of_the_lease() -> None:
    assert heartbeat_interval(9.0) == 3.0
    assert heartbeat_interval(0.0) == 0.05


@pytest.mark.parametrize(
    "line",
    [b"", b"   ", b"{not json", b"[1,2]", b'{"type": "bogus", "version": 1}',
     b'{"type": "delta", "version": "7"}', b"\xff\xfe", b'{"type": "snapshot"}'],
)  # fmt: skip
def test_unusable_stream_lines_are_ignored(line: bytes) -> None:
    assert parse_stream_line(line) is None


def test_stream_lines_parse() -> None:
    msg = parse_stream_line(b'{"type": "heartbeat", "version": 42}\r')
    assert msg == {"type": "heartbeat", "version": 42}


def test_health_tracker_thresholds() -> None:
    t = HealthTracker(rise=2, fall=3)
    assert not t.healthy and not t.ever_healthy
    assert not t.record(True)
    assert t.record(True) and t.healthy and t.ever_healthy
    assert not t.record(False) and not t.record(False) and t.healthy
    assert t.record(False) and not t.healthy
    assert not t.record(True) and t.record(True) and t.healthy


def test_probe_spec_parsing() -> None:
    assert ProbeSpec.parse("tcp") == ProbeSpec("tcp")
    assert ProbeSpec.parse("http:/healthz") == ProbeSpec("http", "/healthz")
    assert ProbeSpec.parse("http") == ProbeSpec("http", "/")
    for bad in ("udp", "http:healthz", "http:/a b"):
        with pytest.raises(ValueError):
            ProbeSpec.parse(bad)


def test_cli_parses_every_flag() -> None:
    cfg = parse_args(
        ["run", "--service", "reviews", "--port", "9080", "--labels", "version=v1,zone=a",
         "--namespace", "shop", "--upstream", "ratings=9091", "--upstream", "ads.other=9092",
         "--lease", "1500ms", "--health", "http:/healthz", "--outbound-port", "0",
         "--", "python", "app.py", "--flag"]
    )  # fmt: skip
    assert cfg.service == "reviews" and cfg.app_port == 9080 and cfg.namespace == "shop"
    assert cfg.labels == {"version": "v1", "zone": "a"}
    assert cfg.upstreams == [("shop/ratings", 9091), ("other/ads", 9092)]
    assert cfg.lease == 1.5 and cfg.outbound_port == 0 and cfg.inbound_port == 15006
    assert cfg.command == ["python", "app.py", "--flag"]
    assert cfg.proxy_id.startswith("reviews-")
    assert parse_duration("2m") == 120.0


@pytest.mark.parametrize(
    "argv",
    [["proxy", "--service", "Bad_Name", "--app-port", "1"],
     ["proxy", "--service", "a", "--app-port", "70000"],
     ["proxy", "--service", "a", "--app-port", "1", "--lease", "soon"],
     ["proxy", "--service", "a", "--app-port", "1", "--health", "udp"],
     ["proxy", "--service", "a", "--app-port", "1", "--upstream", "ratings"],
     ["run", "--service", "a", "--port", "1"]],
)  # fmt: skip
def test_cli_rejects_bad_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_app_environment_points_the_app_at_its_sidecar() -> None:
    env = app_environment({"HOME": "/h", "HTTP_PROXY": "http://corp:3128"}, 9080, 15001)
    assert env["PORT"] == "9080" and env["HOME"] == "/h"
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://127.0.0.1:15001"
    assert "127.0.0.1" in env["NO_PROXY"] and env["no_proxy"] == env["NO_PROXY"]
    assert exit_code(-15) == 143 and exit_code(3) == 3


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    out = await reader.read()  # until the server closes
    writer.close()
    return out


async def test_admin_server_is_strict_and_survives_garbage() -> None:
    hits = {"n": 0}

    def config():  # type: ignore[no-untyped-def]
        hits["n"] += 1
        return json_reply(200, {"version": hits["n"]})

    def broken():  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    server = AdminServer({"/config": config, "/live": lambda: text_reply(200, "live"),
                          "/broken": broken})  # fmt: skip
    port = await server.start("127.0.0.1", 0)
    try:
        ok = await _raw(port, b"GET /config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200 OK") and ok.endswith(b'{"version":1}\n')
        # keep-alive: two requests on one connection, the second closes
        two = await _raw(
            port,
            b"GET /live HTTP/1.1\r\nHost: x\r\n\r\nHEAD /config HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        assert two.count(b"HTTP/1.1 200 OK") == 2 and two.endswith(b"\r\n\r\n")
        cases = {
            b"POST /config HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi": b"413",
            b"DELETE /config HTTP/1.1\r\nConnection: close\r\n\r\n": b"405",
            b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n": b"404",
            b"\x16\x03\x01\x02\x00garbage\r\n\r\n": b"400",
            b"GET /live HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n": b"431",
            b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n": b"431",
            b"GET /broken HTTP/1.1\r\n\r\n": b"500",
        }
        for request, status in cases.items():
            answer = await _raw(port, request)
            assert answer.split(b" ", 2)[1] == status, (request[:40], answer[:80])
        again = await _raw(port, b"GET /config HTTP/1.0\r\n\r\n")
        assert again.startswith(b"HTTP/1.1 200") and b'"version":3' in again  # HEAD ran it too
    finally:
        await server.close()


async def test_probes_follow_a_real_app() -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        status = b"200 OK" if b"/healthz" in line else b"503 Busy"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert await probe_once(ProbeSpec("tcp"), "127.0.0.1", port, 1.0)
    assert await probe_once(ProbeSpec("http", "/healthz"), "127.0.0.1", port, 1.0)
    assert not await probe_once(ProbeSpec("http", "/other"), "127.0.0.1", port, 1.0)
    prober = HealthProber(ProbeSpec("http", "/healthz"), "127.0.0.1", port, interval=0.01)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(prober.run())
        await prober.wait_answered()
        assert prober.healthy
        server.close()
        await server.wait_closed()
        await prober.wait_for(healthy=False)  # three refused connects flip it
        task.cancel()
    assert not await probe_once(ProbeSpec("tcp"), "127.0.0.1", port, 1.0)
