"""Turn raw documents (from YAML or JSON) into validated, canonical resource documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gossamer.model.common import API_VERSION, dump
from gossamer.model.errors import FieldError, ValidationFailed
from gossamer.model.kinds import KINDS
from gossamer.model.resources import Metadata

LineMap = dict[str, int]  # field path -> 1-based source line


@dataclass(frozen=True)
class Resource:
    kind: str
    metadata: Metadata
    spec: BaseModel

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.metadata.namespace, self.metadata.name)

    def to_doc(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "metadata": dump(self.metadata),
            "spec": dump(self.spec),
        }


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_for(path: str, lines: LineMap | None) -> int | None:
    if not lines:
        return None
    # The deepest known ancestor of the path: a missing field has no line of its own.
    probe = path
    while probe:
        if probe in lines:
            return lines[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return lines.get("")


def _errors_from(
    exc: ValidationError, prefix: str, doc_name: str, lines: LineMap | None
) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        # pydantic puts the failing union member / validator name in loc; keep only field parts.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = prefix + ("." + _path(loc) if loc else "") if prefix else _path(loc)
        path = path.replace(".[", "[")
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input") if err["type"] != "missing" else None
        if isinstance(value, dict | list):
            value = None  # the whole sub-document is noise in an error line
        errors.append(FieldError(doc_name, path, msg, value, _line_for(path, lines)))
    return errors


def parse_document(raw: Any, doc_name: str = "document", lines: LineMap | None = None) -> Resource:
    """Validate one raw document. Raises ValidationFailed listing every problem found."""
    if not isinstance(raw, dict):
        raise ValidationFailed(
            [FieldError(doc_name, "", "a document must be a mapping", type(raw).__name__)]
        )
    errors: list[FieldError] = []
    api_version = raw.get("apiVersion")
    kind = raw.get("kind")
    meta_raw = raw.get("metadata")
    if (
        isinstance(meta_raw, dict)
        and isinstance(meta_raw.get("name"), str)
        and isinstance(kind, str)
    ):
        doc_name = f"{kind} {meta_raw.get('namespace', 'default')}/{meta_raw['name']}"
    if api_version != API_VERSION:
        errors.append(
            FieldError(
                doc_name,
                "apiVersion",
                f"must be {API_VERSION!r}",
                api_version,
                _line_for("apiVersion", lines),
            )
        )
    info = KINDS.get(kind) if isinstance(kind, str) else None
    if info is None:
        errors.append(
            FieldError(
                doc_name,
                "kind",
                "must be one of " + ", ".join(KINDS),
                kind,
                _line_for("kind", lines),
            )
        )
    for extra in sorted(set(raw) - {"apiVersion", "kind", "metadata", "spec", "status"}):
        errors.append(
            FieldError(
                doc_name,
                extra,
                "unknown top-level field; allowed: apiVersion, kind, metadata, spec, status",
                None,
                _line_for(extra, lines),
            )
        )
    metadata = None
    try:
        metadata = Metadata.model_validate(meta_raw if meta_raw is not None else {})
    except ValidationError as exc:
        errors.extend(_errors_from(exc, "metadata", doc_name, lines))
    spec = None
    if info is not None:
        try:
            spec = info.spec.model_validate(raw.get("spec") or {})
        except ValidationError as exc:
            errors.extend(_errors_from(exc, "spec", doc_name, lines))
    if errors or metadata is None or spec is None or info is None:
        raise ValidationFailed(errors)
    return Resource(info.kind, metadata, spec)


# --- YAML with line numbers -----------------------------------------------------------------


def _line_map(node: yaml.Node, path: str, out: LineMap) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            out[child] = key_node.start_mark.line + 1
            _line_map(value_node, child, out)
            out[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, f"{path}[{i}]", out)


def load_yaml(text: str, source: str) -> list[tuple[Any, str, LineMap]]:
    """Multi-document YAML -> [(raw document, name for errors, line map)]. Empty documents skipped.

    A syntax error raises ValidationFailed naming the source and the line.
    """
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        raws = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed(
            [FieldError(source, "", f"invalid YAML: {problem}", None, line)]
        ) from None
    out = []
    for index, (node, raw) in enumerate(zip(nodes, raws, strict=True)):
        if raw is None:
            continue
        lines: LineMap = {}
        _line_map(node, "", lines)
        out.append((raw, f"{source} document {index + 1}", lines))
    return out


def parse_documents(items: list[tuple[Any, str, LineMap | None]]) -> list[Resource]:
    """Validate many documents at once: all-or-nothing, every error reported, no duplicates."""
    errors: list[FieldError] = []
    resources: list[Resource] = []
    seen: dict[tuple[str, str, str], str] = {}
    for raw, name, lines in items:
        try:
            res = parse_document(raw, name, lines)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
            continue
        if res.key in seen:
            errors.append(
                FieldError(
                    name,
                    "metadata.name",
                    f"duplicate of {seen[res.key]} in the same apply",
                    res.metadata.name,
                    _line_for("metadata.name", lines),
                )
            )
            continue
        seen[res.key] = name
        resources.append(res)
    if errors:
        raise ValidationFailed(errors)
    return resources
