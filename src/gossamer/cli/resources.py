"""`gossamer apply`, `get` and `delete`: resources on the control plane, kubectl-style."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gossamer.cli.output import OutputFormat, list_items, resource_ref
from gossamer.cli.remote import (
    ControlOption,
    NamespaceOption,
    SelectorOption,
    control_client,
    fail,
    note,
    selector_arg,
)

if TYPE_CHECKING:
    from gossamer.cli.files import SourceDocument
    from gossamer.model import KindInfo

FilesOption = Annotated[
    list[str],
    typer.Option(
        "--filename", "-f", help="A file, a directory of *.yaml/*.yml/*.json, or - for stdin."
    ),
]


def parse_timeout(value: str) -> float:
    """'30s', '1m30s', '500ms' or plain seconds -> seconds."""
    from gossamer.model.common import check_duration, duration_seconds

    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = duration_seconds(check_duration(value))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--timeout'") from None
    if seconds <= 0:
        raise typer.BadParameter("must be positive", param_hint="'--timeout'")
    return seconds


def load_documents(paths: list[str]) -> list[SourceDocument]:
    """Read -f sources; YAML syntax errors exit 1 naming file and line before anything is sent."""
    from gossamer.cli.files import locate_errors, read_documents
    from gossamer.model import ValidationFailed

    try:
        documents = read_documents(paths, sys.stdin)
    except FileNotFoundError as exc:
        raise typer.BadParameter(f"{exc.args[0]!r} does not exist", param_hint="'-f'") from None
    except ValidationFailed as exc:
        fail(
            f"{len(exc.errors)} error(s) reading {', '.join(paths)}",
            locate_errors([e.to_dict() for e in exc.errors], []),
        )
    if not documents:
        fail(f"no documents found in {', '.join(paths)}")
    return documents


def kind_arg(name: str) -> KindInfo:
    from gossamer.model import lookup_kind

    try:
        return lookup_kind(name)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="'KIND'") from None


def apply(
    filename: FilesOption,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until affected proxies confirm the change.")
    ] = False,
    timeout: Annotated[
        str, typer.Option("--timeout", help="How long --wait waits, e.g. 30s.")
    ] = "30s",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and report, store nothing.")
    ] = False,
    control: ControlOption = None,
) -> None:
    """Create or update resources from YAML/JSON documents (all or nothing)."""
    from gossamer.cli.files import locate_errors
    from gossamer.cli.output import apply_lines, format_warning
    from gossamer.client import ApiError

    wait_seconds = parse_timeout(timeout) if wait else None
    documents = load_documents(filename)
    with control_client(control) as client:
        try:
            answer = client.apply(
                [d.raw for d in documents], dry_run=dry_run, wait_seconds=wait_seconds
            )
        except ApiError as exc:
            details = locate_errors(exc.errors, documents)
            if exc.status == 409:
                details.append("another write changed these resources meanwhile: apply again")
            fail(f"{exc.message} ({exc.reason}); nothing was applied", details)
    for line in apply_lines(answer.get("results") or [], dry_run):
        typer.echo(line)
    for warning in answer.get("warnings") or []:
        typer.echo(f"Warning: {format_warning(warning)}", err=True)
    sync = answer.get("sync")
    if wait_seconds is not None and isinstance(sync, dict):
        pending = [str(p) for p in sync.get("pending") or []]
        if not sync.get("complete"):
            fail(
                f"not every affected proxy confirmed revision {answer.get('revision')} "
                f"within {timeout}; pending: {', '.join(pending) or '(unknown)'}"
            )
        typer.echo(f"synced: affected proxies have revision {answer.get('revision')}", err=True)


def get(
    kind: Annotated[str, typer.Argument(help="Kind, e.g. httproutes, route, svc.")],
    name: Annotated[str | None, typer.Argument(help="One resource by name.")] = None,
    namespace: NamespaceOption = "default",
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")
    ] = False,
    selector: SelectorOption = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    control: ControlOption = None,
) -> None:
    """Show resources of one kind, or one resource."""
    from gossamer.cli.columns import resource_table
    from gossamer.cli.output import render_table, to_json, to_yaml

    info = kind_arg(kind)
    labels = selector_arg(selector)
    if name is not None and (all_namespaces or labels):
        raise typer.BadParameter("a NAME cannot be combined with -A or -l")
    hint = f"list what exists with `gossamer get {info.plural} -n {namespace}` (or -A)"
    with control_client(control, not_found_hint=hint) as client:
        if name is not None:
            doc = client.get(info.plural, namespace, name)
            items: list[dict[str, Any]] = [doc]
            listing: dict[str, Any] = doc
        else:
            listing = client.list(info.plural, None if all_namespaces else namespace, labels)
            items = list_items(listing)
    if output is OutputFormat.json:
        typer.echo(to_json(listing), nl=False)
    elif output is OutputFormat.yaml:
        typer.echo(to_yaml(items), nl=False)
    elif not items:
        where = "any namespace" if all_namespaces else f"namespace {namespace}"
        note(f"No {info.plural} found in {where}.")
    else:
        headers, rows = resource_table(
            info.kind,
            items,
            wide=output is OutputFormat.wide,
            all_namespaces=all_namespaces,
            now=datetime.now(UTC),
        )
        render_table(headers, rows, sys.stdout)


def _reference(document: SourceDocument) -> tuple[str, str, str] | None:
    raw = document.raw
    kind = raw.get("kind") if isinstance(raw, dict) else None
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace", "default") if isinstance(meta, dict) else None
    if isinstance(kind, str) and isinstance(name, str) and isinstance(namespace, str):
        return kind, namespace, name
    return None


def delete(
    kind: Annotated[str | None, typer.Argument(help="Kind of the resources.")] = None,
    names: Annotated[list[str] | None, typer.Argument(help="Names to delete.")] = None,
    filename: Annotated[
        list[str] | None,
        typer.Option("--filename", "-f", help="Delete the resources these documents name."),
    ] = None,
    namespace: NamespaceOption = "default",
    control: ControlOption = None,
) -> None:
    """Delete resources by KIND NAME... or by the documents of -f (all or nothing)."""
    if filename and kind:
        raise typer.BadParameter("give either KIND NAME... or -f, not both")
    if filename:
        documents = load_documents(filename)
        refs = [_reference(d) for d in documents]
        bad = [d.source for d, r in zip(documents, refs, strict=True) if r is None]
        if bad:
            fail("documents without kind and metadata.name", bad)
        references = [r for r in refs if r is not None]
        with control_client(control) as client:
            client.delete_many(references)
    elif kind and names:
        info = kind_arg(kind)
        references = [(info.kind, namespace, n) for n in names]
        hint = f"list what exists with `gossamer get {info.plural} -n {namespace}`"
        with control_client(control, not_found_hint=hint) as client:
            if len(names) == 1:
                client.delete(info.plural, namespace, names[0])
            else:
                client.delete_many(references)
    else:
        raise typer.BadParameter("give KIND NAME... or -f FILE")
    for kind_name, _, name in references:
        typer.echo(f"{resource_ref(kind_name, name)} deleted")


def register(app: typer.Typer) -> None:
    app.command()(apply)
    app.command()(get)
    app.command()(delete)
