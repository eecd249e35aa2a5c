"""Validation errors that name the document, the field path, the bad value and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    document: str  # e.g. "HTTPRoute default/reviews" or "document 3"
    field: str  # dotted path, e.g. "spec.rules[0].backendRefs[1].weight"
    message: str  # what is allowed
    value: Any = None
    line: int | None = None  # source line, when parsed from YAML

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "document": self.document,
            "field": self.field,
            "message": self.message,
        }
        if self.value is not None:
            out["value"] = self.value
        if self.line is not None:
            out["line"] = self.line
        return out

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        val = f": got {self.value!r}" if self.value is not None else ""
        return f"{self.document}{where}: {self.field}: {self.message}{val}"


@dataclass
class ValidationFailed(Exception):
    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)
