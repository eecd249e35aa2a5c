"""Reading resource documents for `apply -f` / `delete -f`: files, directories, stdin.

Only YAML syntax is checked here (with file and line); the control plane validates the
documents themselves. Each document keeps a map of field path -> source line so that the
server's errors, which name a document and a field, can be pointed back at the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gossamer.model.errors import FieldError, ValidationFailed
from gossamer.model.parse import load_yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class SourceDocument:
    raw: Any
    source: str  # "mesh.yaml document 2", for humans
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def server_name(self) -> str | None:
        """The name the control plane gives this document in errors: "Kind namespace/name"."""
        raw = self.raw
        if not isinstance(raw, dict):
            return None
        meta = raw.get("metadata")
        kind = raw.get("kind")
        if not (isinstance(meta, dict) and isinstance(meta.get("name"), str)):
            return None
        # Same formatting as the server's, even for a missing or odd kind ("None default/x").
        namespace = meta.get("namespace", "default")
        return f"{kind} {namespace}/{meta['name']}"

    def line_of(self, field_path: str) -> int | None:
        """Source line of a field, or of its deepest ancestor present in the file."""
        probe = field_path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return self.lines.get("")


def _rerooted(lines: dict[str, int], prefix: str) -> dict[str, int]:
    """Line map of a sub-document: "items[2].spec.x" -> "spec.x" for prefix "items[2]"."""
    out = {}
    for path, line in lines.items():
        if path == prefix:
            out[""] = line
        elif path.startswith(prefix + ".") or path.startswith(prefix + "["):
            out[path[len(prefix) :].removeprefix(".")] = line
    return out


def _expand_list(raw: Any, source: str, lines: dict[str, int]) -> list[SourceDocument]:
    """A `kind: List` (what `get -o json` prints) or a bare array holds many documents."""
    if isinstance(raw, dict) and raw.get("kind") == "List" and isinstance(raw.get("items"), list):
        items, prefix = raw["items"], "items"
    elif isinstance(raw, list):
        items, prefix = raw, ""
    else:
        return [SourceDocument(raw, source, lines)]
    return [
        SourceDocument(item, f"{source} item {i + 1}", _rerooted(lines, f"{prefix}[{i}]"))
        for i, item in enumerate(items)
    ]


def documents_from_text(text: str, source: str) -> list[SourceDocument]:
    """Parse multi-document YAML (or JSON). Raises ValidationFailed on a syntax error."""
    out: list[SourceDocument] = []
    for raw, name, lines in load_yaml(text, source):
        out.extend(_expand_list(raw, name, lines))
    return out


def manifest_files(directory: Path) -> list[Path]:
    """The manifests of one directory (not recursive, like kubectl), in name order."""
    return sorted(
        p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES
    )


def read_documents(paths: Iterable[str], stdin: TextIO) -> list[SourceDocument]:
    """Documents from every path ("-" is stdin). A missing path raises FileNotFoundError.

    YAML syntax errors from every file are collected and raised together as ValidationFailed.
    """
    files: list[tuple[str, Path | None]] = []
    for name in paths:
        if name == "-":
            files.append(("<stdin>", None))
            continue
        path = Path(name)
        if path.is_dir():
            files.extend((str(p), p) for p in manifest_files(path))
        elif path.is_file():
            files.append((name, path))
        else:
            raise FileNotFoundError(name)
    documents: list[SourceDocument] = []
    errors: list[FieldError] = []
    for source, file_path in files:
        try:
            text = stdin.read() if file_path is None else file_path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            errors.append(FieldError(source, "", "not UTF-8 text"))
            continue
        try:
            documents.extend(documents_from_text(text, source))
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return documents


def locate_errors(errors: list[dict[str, Any]], documents: list[SourceDocument]) -> list[str]:
    """Render the server's validation errors, each pointed at its file and line where known."""
    by_name: dict[str, SourceDocument] = {}
    for index, doc in enumerate(documents):
        by_name[f"document {index + 1}"] = doc
        name = doc.server_name
        if name is not None:
            by_name.setdefault(name, doc)
    lines = []
    for err in errors:
        document = str(err.get("document") or "")
        field_path = str(err.get("field") or "")
        source_doc = by_name.get(document)
        line = err.get("line")
        where = ""
        if source_doc is not None:
            if not isinstance(line, int):
                line = source_doc.line_of(field_path)
            where = f" ({source_doc.source}" + (f", line {line})" if line else ")")
        elif isinstance(line, int):
            where = f" (line {line})"
        value = f": got {err['value']!r}" if err.get("value") is not None else ""
        at = f"{field_path}: " if field_path else ""
        lines.append(f"{document or 'request'}{where}: {at}{err.get('message', '')}{value}")
    return lines
