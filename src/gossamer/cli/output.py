"""Rendering for operator commands: tables, YAML/JSON, ages, apply lines. Pure where possible.

Row builders return plain strings so they are testable without a terminal; render_table
turns them into a rich table (borderless, kubectl-like, so awk and grep still work).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

API_GROUP = "gossamer.dev"
Row = list[str]


class OutputFormat(StrEnum):
    table = "table"
    wide = "wide"
    yaml = "yaml"
    json = "json"


def dig(doc: Any, *path: str | int, default: Any = None) -> Any:
    """doc["a"]["b"][0] without a KeyError/TypeError for documents missing a part."""
    for part in path:
        if isinstance(part, int):
            if not isinstance(doc, list) or not -len(doc) <= part < len(doc):
                return default
        elif not isinstance(doc, dict) or part not in doc:
            return default
        doc = doc[part]
    return doc


def list_items(listing: Any) -> list[dict[str, Any]]:
    """The object items of a List answer; anything else in it is skipped, never fatal."""
    items = dig(listing, "items", default=[])
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_age(created: Any, now: datetime) -> str:
    """kubectl's short age: 42s, 7m, 3h, 12d ('<unknown>' when there is no timestamp)."""
    start = parse_time(created)
    if start is None:
        return "<unknown>"
    seconds = max(0, int((now - start).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_labels(labels: Any) -> str:
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def resource_ref(kind: str, name: str) -> str:
    """kubectl's `kind.group/name`, e.g. httproute.gossamer.dev/reviews."""
    return f"{kind.lower()}.{API_GROUP}/{name}"


def apply_lines(results: Sequence[Any], dry_run: bool) -> list[str]:
    suffix = " (dry run)" if dry_run else ""
    return [
        f"{resource_ref(str(dig(r, 'kind', default='?')), str(dig(r, 'name', default='?')))} "
        f"{dig(r, 'action', default='?')}{suffix}"
        for r in results
    ]


def format_warning(warning: Any) -> str:
    if isinstance(warning, dict):
        parts = [str(warning[k]) for k in ("document", "field") if warning.get(k)]
        message = str(warning.get("message", ""))
        return ": ".join([*parts, message]) if parts else message
    return str(warning)


# --- structured output ----------------------------------------------------------------------


def to_yaml(documents: Sequence[Any]) -> str:
    """Multi-document YAML, ready for `apply -f -`."""
    import yaml

    return "---\n".join(
        yaml.safe_dump(doc, sort_keys=False, default_flow_style=False) for doc in documents
    )


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


# --- tables ---------------------------------------------------------------------------------


def render_table(headers: Sequence[str], rows: Sequence[Row], out: IO[str]) -> None:
    """A borderless table; as wide as it needs when writing to a pipe (no wrapping)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, no_wrap=True, overflow="fold")
    for row in rows:
        table.add_row(*row)
    natural = sum(max([len(h)] + [len(r[i]) for r in rows]) + 2 for i, h in enumerate(headers))
    probe = Console(file=out)
    # A terminal keeps its width (rich folds long cells); a pipe gets whole lines.
    width = probe.width if probe.is_terminal else max(natural, 40)
    console = Console(width=width, highlight=False, force_terminal=probe.is_terminal)
    with console.capture() as captured:
        console.print(table)
    # rich pads the last column; trailing blanks only get in the way of grep and diff.
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
