"""`gossamer services`, `endpoints` and `proxies`: what the mesh sees right now."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from gossamer.cli.output import OutputFormat, list_items
from gossamer.cli.remote import (
    ControlOption,
    NamespaceOption,
    SelectorOption,
    control_client,
    note,
    selector_arg,
)

OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table, wide, yaml or json.")
]


def _show(
    answer: dict[str, Any], output: OutputFormat, table: tuple[list[str], list[list[str]]]
) -> None:
    from gossamer.cli.output import render_table, to_json, to_yaml

    if output is OutputFormat.json:
        typer.echo(to_json(answer), nl=False)
    elif output is OutputFormat.yaml:
        typer.echo(to_yaml([answer]), nl=False)
    else:
        render_table(*table, sys.stdout)


def services(output: OutputOption = OutputFormat.table, control: ControlOption = None) -> None:
    """Every service the mesh knows, with healthy/total instance counts."""
    from gossamer.cli.columns import services_table

    with control_client(control) as client:
        answer = client.services()
    if not list_items(answer) and output in (OutputFormat.table, OutputFormat.wide):
        note("No services known to the mesh.")
        return
    _show(answer, output, services_table(list_items(answer)))


def endpoints(
    service: Annotated[str, typer.Argument(help="Service name, or namespace/name.")],
    namespace: NamespaceOption = "default",
    selector: SelectorOption = None,
    output: OutputOption = OutputFormat.table,
    control: ControlOption = None,
) -> None:
    """Healthy instances of one service (optionally only those matching -l labels)."""
    from gossamer.cli.columns import endpoints_table

    if "/" in service:
        namespace, _, service = service.partition("/")
    labels = selector_arg(selector)
    hint = "list known services with `gossamer services`"
    with control_client(control, not_found_hint=hint) as client:
        answer = client.endpoints(namespace, service, labels)
    if not list_items(answer) and output in (OutputFormat.table, OutputFormat.wide):
        matching = f" matching {labels}" if labels else ""
        note(f"No healthy endpoints for {namespace}/{service}{matching}.")
        return
    _show(answer, output, endpoints_table(list_items(answer)))


def proxies(output: OutputOption = OutputFormat.table, control: ControlOption = None) -> None:
    """Connected proxies: acked vs latest snapshot version, connection, last seen."""
    from gossamer.cli.columns import proxies_table

    with control_client(control) as client:
        answer = client.proxies()
    if not list_items(answer) and output in (OutputFormat.table, OutputFormat.wide):
        note(f"No proxies connected (latest version {answer.get('latest', '-')}).")
        return
    _show(answer, output, proxies_table(answer, datetime.now(UTC)))


def register(app: typer.Typer) -> None:
    app.command()(services)
    app.command()(endpoints)
    app.command()(proxies)
