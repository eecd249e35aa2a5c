"""Shared plumbing of operator commands: the --control option, the client, exit codes.

Exit codes scripts can trust: 0 ok, 1 the operation failed (API error, validation),
2 usage error (typer/click's own code), 3 the control plane cannot be reached.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from gossamer.cli.common import control_url

if TYPE_CHECKING:
    from gossamer.client import ApiError, ControlClient

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

ControlOption = Annotated[
    str | None,
    typer.Option(
        "--control",
        help="Control plane URL (env GOSSAMER_CONTROL, default http://127.0.0.1:15010).",
        show_default=False,
    ),
]
NamespaceOption = Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")]
SelectorOption = Annotated[
    list[str] | None,
    typer.Option("--selector", "-l", help="Label selector k=v (repeat or comma-separate)."),
]


def error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def note(message: str) -> None:
    """Information for the human (stderr), not output a script should parse."""
    typer.echo(message, err=True)


def fail(message: str, details: Sequence[str] = (), code: int = EXIT_FAILED) -> NoReturn:
    error(message)
    for line in details:
        typer.echo(f"  {line}", err=True)
    raise typer.Exit(code)


def selector_arg(values: list[str] | None) -> str | None:
    """-l a=b -l c=d or -l a=b,c=d -> "a=b,c=d"; a term without '=' is a usage error."""
    terms = [t.strip() for v in values or [] for t in v.split(",") if t.strip()]
    for term in terms:
        key, sep, _ = term.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{term!r} is not key=value", param_hint="'-l'")
    return ",".join(terms) or None


def describe_api_error(exc: ApiError) -> list[str]:
    """Each listed error on its own line: document, field, message, value, line."""
    from gossamer.cli.files import locate_errors

    return locate_errors(exc.errors, [])


@contextmanager
def control_client(
    control: str | None, timeout: float = 10.0, not_found_hint: str | None = None
) -> Iterator[ControlClient]:
    """A client for the chosen control plane; API and connection errors become exit codes."""
    from gossamer.client import ApiError, ControlClient, ControlUnreachable

    url = control_url(control)
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(
            f"{url!r} is not an http:// or https:// URL", param_hint="'--control'"
        )
    try:
        with ControlClient(url, timeout) as client:
            yield client
    except ControlUnreachable as exc:
        fail(str(exc), code=EXIT_UNREACHABLE)
    except ApiError as exc:
        details = describe_api_error(exc)
        if exc.status == 404 and not_found_hint:
            details.append(not_found_hint)
        fail(exc.message + f" ({exc.reason})", details)
