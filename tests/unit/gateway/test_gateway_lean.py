"""The gateway process stays lean like the sidecar: no web framework, validation or CLI
libraries (cryptography is allowed: JWT signatures and certificate names)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("pydantic", "typer", "rich", "aiohttp", "httpx", "yaml", "gossamer.control")


def test_importing_the_gateway_loads_nothing_heavy() -> None:
    code = (
        "import sys; import gossamer.cli.main, gossamer.gateway.cli, gossamer.gateway.runtime, "
        "gossamer.gateway.target, gossamer.gateway.jose, gossamer.gateway.tls; "
        f"print([m for m in {FORBIDDEN!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_sidecar_does_not_load_the_gateway() -> None:
    code = (
        "import sys; import gossamer.proxy.runtime, gossamer.proxy.dataplane; "
        "print(sorted(m for m in sys.modules if m.startswith('gossamer.gateway')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
