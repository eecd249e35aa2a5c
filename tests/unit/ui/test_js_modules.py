"""Runs the dashboard's JavaScript unit tests (js_modules.test.mjs) under Node's test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed: the JS unit tests need it")
def test_dashboard_js_modules() -> None:
    assert NODE is not None
    suite = Path(__file__).with_name("js_modules.test.mjs")
    done = subprocess.run(
        [NODE, "--test", str(suite)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout, done.stdout
