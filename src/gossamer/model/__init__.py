"""Typed mesh resources and their validation. Imports nothing else of the project."""

from gossamer.model.errors import FieldError, ValidationFailed
from gossamer.model.kinds import KINDS, KindInfo, lookup_kind
from gossamer.model.parse import parse_document, parse_documents

__all__ = [
    "KINDS",
    "FieldError",
    "KindInfo",
    "ValidationFailed",
    "lookup_kind",
    "parse_document",
    "parse_documents",
]
