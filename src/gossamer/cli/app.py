"""The typer application: each command group registers itself here."""

from __future__ import annotations

import os

import typer

app = typer.Typer(
    name="gossamer",
    help="gossamer: a service mesh you can read.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    token: str | None = typer.Option(
        None,
        "--token",
        help="Credential for the control plane (env GOSSAMER_TOKEN).",
        show_default=False,
    ),
) -> None:
    """gossamer: a service mesh you can read."""
    if token:  # read by client/credentials.py, like the environment variable
        os.environ["GOSSAMER_TOKEN"] = token


# Command groups (one module each). Each module exposes register(app).
# Add a line here when you add a module.
from gossamer.cli import common as _common  # noqa: E402

_common.register(app)

from gossamer.cli import discovery as _discovery  # noqa: E402
from gossamer.cli import resources as _resources  # noqa: E402

_resources.register(app)
_discovery.register(app)
from gossamer.cli import demo as _demo  # noqa: E402

_demo.register(app)
from gossamer.cli import control as _control  # noqa: E402

_control.register(app)
from gossamer.cli import observe as _observe  # noqa: E402

_observe.register(app)
from gossamer.cli import traffic as _traffic  # noqa: E402

_traffic.register(app)
from gossamer.cli import explain_authz as _explain_authz  # noqa: E402, F401  (adds `explain authz`)
from gossamer.cli import security as _security  # noqa: E402

_security.register(app)
