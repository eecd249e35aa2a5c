"""`gossamer demo` end to end: it comes up, the frontend answers through the mesh with
reviews from both versions, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GOSSAMER = [sys.executable, "-m", "gossamer.cli.main"]


def descendants(root: int) -> set[int]:
    """Every live process below `root` (children, grandchildren, ...), from /proc."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # the command name may hold spaces: fields start after the last ')'
            parent_of[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parent_of.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get_via_proxy(proxy_port: int, url: str) -> tuple[int, bytes]:
    import socket

    host = url.split("/")[2]
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as s:
        s.sendall(f"GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def get_with_token(port: int, path: str, token: str) -> tuple[int, bytes]:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: demo\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def cli(data_dir: Path, control: str, *args: str, timeout: float = 30) -> str:
    """The real `gossamer` CLI against the running demo, as its banner says to run it."""
    env = {**os.environ, "GOSSAMER_CONTROL": control, "GOSSAMER_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [*GOSSAMER, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def check_observability(data_dir: Path, control: str) -> None:
    """What the banner says to try really works on the demo's traffic: canary status,
    stat, edges, tap and explain."""
    canary = json.loads(cli(data_dir, control, "canary", "status", "reviews", "-o", "json"))
    assert canary["spec"]["canary"] == {"version": "v2"}, canary
    assert canary["status"]["phase"] in ("Progressing", "Promoted"), canary["status"]
    # Sidecars push telemetry every few seconds: wait (bounded) until reviews shows up.
    deadline = time.monotonic() + 30
    while True:
        stat = json.loads(cli(data_dir, control, "stat", "-o", "json"))
        rows = {row["service"]: row for row in stat["items"]}
        if rows.get("default/reviews", {}).get("requests", 0) > 0:
            break
        assert time.monotonic() < deadline, stat
    assert rows["default/reviews"]["successRate"] == 1.0, rows
    assert rows["default/frontend"]["requests"] > 0, rows  # the load generator's calls
    edges = json.loads(cli(data_dir, control, "edges", "-o", "json"))["items"]
    pairs = {(e["src"], e["dst"]) for e in edges}
    assert {("default/frontend", "default/reviews"), ("default/frontend", "default/catalog")} <= (
        pairs
    ), edges
    tapped = cli(data_dir, control, "tap", "reviews", "--limit", "3", "-o", "json").splitlines()
    assert len(tapped) == 3, tapped
    assert all(json.loads(line)["path"].startswith("/reviews/") for line in tapped), tapped
    explained = cli(data_dir, control, "explain", "route", "reviews", "GET", "/reviews/1")
    assert "version=v2" in explained, explained


def test_demo_serves_through_the_mesh_and_stops_cleanly(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [*GOSSAMER, "demo", "--data-dir", str(tmp_path), "--rps", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert demo.stdout is not None
    seen: list[str] = []
    ready: dict[str, str] = {}
    try:
        for line in demo.stdout:  # blocks on the next line: no sleeps
            seen.append(line)
            if line.startswith("gossamer-demo ready"):
                ready = dict(p.split("=", 1) for p in line.split() if "=" in p)
                break
        assert ready, "demo exited before ready:\n" + "".join(seen)
        banner = "".join(seen)
        assert "gossamer endpoints reviews" in banner and "curl" in banner
        assert f"dashboard       {ready['control']}/" in banner
        proxy_port = int(ready["frontend-proxy"].rsplit(":", 1)[1])
        versions: set[str] = set()
        deadline = time.monotonic() + 20
        while "v1" not in versions or "v2" not in versions:  # 90/10 split: both show up
            assert time.monotonic() < deadline, f"only saw {versions}"
            status, body = get_via_proxy(proxy_port, "http://frontend/")
            assert status == 200, body
            page = json.loads(body)
            versions |= {book["review"]["version"] for book in page["shelf"]}
        # The gateway in front: the JWT route refuses without a token, serves with the
        # banner's token; the frontend answers through it.
        edge = ready["gateway"]
        assert get_via_proxy(int(edge.rsplit(":", 1)[1]), f"{edge}/api/reviews/1")[0] == 401
        token = banner.split("Authorization: Bearer ", 1)[1].split("'", 1)[0]
        status, body = get_with_token(int(edge.rsplit(":", 1)[1]), "/api/reviews/1", token)
        assert status == 200 and json.loads(body)["book"] == 1, body
        check_observability(tmp_path / "control", ready["control"])
        children = descendants(demo.pid)
        assert len(children) >= 10  # control + 4 sidecars + 4 apps + the gateway
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            rest, _ = demo.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    assert demo.returncode == 0, rest
    assert "stopping" in rest and "load:" in rest
    left = [pid for pid in children if alive(pid)]
    assert left == [], f"processes left behind: {left}"
