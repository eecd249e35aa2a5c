"""Entry point of the `gossamer` command.

The sidecar (`gossamer proxy`, `gossamer run`) is dispatched before typer, pydantic or rich
are imported, so the long-running proxy process stays lean (DESIGN.md, "Hot path").
"""

from __future__ import annotations

import sys

LEAN_COMMANDS = {"proxy", "run", "gateway"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "gateway":
        from gossamer.gateway.cli import main as gateway_main

        sys.exit(gateway_main(sys.argv[1:]))
    if len(sys.argv) > 1 and sys.argv[1] in LEAN_COMMANDS:
        from gossamer.proxy.cli import main as proxy_main

        sys.exit(proxy_main(sys.argv[1:]))
    from gossamer.cli.app import app

    app()


if __name__ == "__main__":
    main()
