"""A real control plane (`gossamer control` subprocess) and a runner for the real CLI binary."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_harness import GOSSAMER, Cli

# cli/control.py prints: "gossamer control plane listening on http://127.0.0.1:PORT (data: ...)"
READY = re.compile(r"listening on (https?://[\w.\[\]:-]+)")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GOSSAMER_CONTROL"}
    env["COLUMNS"] = "200"
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture
def control_url(tmp_path: Path) -> Iterator[str]:
    """Start `gossamer control` on port 0 and wait for its ready line to learn the URL."""
    proc = subprocess.Popen(
        [GOSSAMER, "control", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_clean_env(),
    )
    assert proc.stdout is not None
    seen = []
    url = None
    try:
        for line in proc.stdout:  # blocks until the next line: no sleeping, no polling
            seen.append(line)
            if (match := READY.search(line)) is not None:
                url = match.group(1)
                break
        if url is None:
            proc.wait(timeout=10)
            pytest.fail("gossamer control exited before ready:\n" + "".join(seen))
        # Keep draining its output so a chatty server never blocks on a full pipe.
        drain = threading.Thread(target=seen.extend, args=(proc.stdout,), daemon=True)
        drain.start()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def cli(control_url: str, tmp_path: Path) -> Cli:
    # The CLI finds the control plane's admin credential in its data dir (loopback, 0600).
    return Cli(control_url, {**_clean_env(), "GOSSAMER_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def closed_port_url() -> Iterator[str]:
    """A URL nothing listens on: the port is held bound (not listening) for the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def offline_cli(closed_port_url: str) -> Cli:
    return Cli(closed_port_url, _clean_env())
