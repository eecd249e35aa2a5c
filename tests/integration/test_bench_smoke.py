"""The benchmark harness works end to end: real processes, real sockets, tiny sizes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench", *args]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def test_quick_control_bench_writes_results(tmp_path: Path) -> None:
    done = subprocess.run(
        _bench("--quick", "--only", "control", "--out", str(tmp_path)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result_json,) = tmp_path.glob("*-quick.json")
    results = json.loads(result_json.read_text())
    measures = {m["measure"]: m["value"] for m in results["control"]["measures"]}
    assert any(name.startswith("change → last ACK") for name in measures), measures
    assert all(value is not None for value in measures.values()), measures
    assert "## Control plane" in (tmp_path / result_json.name.replace(".json", ".md")).read_text()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_ctrl_c_stops_every_process_the_bench_started(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        _bench("--quick", "--only", "dataplane", "--keep", "--out", str(tmp_path)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # The first measurement line means every topology is up and loaded once.
        for line in proc.stdout:
            if line.startswith("  fixed rate:"):
                break
        else:
            pytest.fail(
                f"bench ended before measuring: {proc.stderr.read() if proc.stderr else ''}"
            )
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    kept = stderr.split("work dir kept at ", 1)[1].split()[0]
    try:
        assert _processes_mentioning(kept) == []
    finally:
        shutil.rmtree(kept, ignore_errors=True)
