"""Errors the API client raises: one for answers the control plane gave, one for no answer."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

# Reasons by status, for error bodies that are not the protocol's (e.g. a proxy in between).
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Gone",
    413: "PayloadTooLarge",
    422: "Invalid",
    500: "Internal",
}


@dataclass
class ApiError(Exception):
    """The control plane answered with an error body (docs/protocol.md, "Errors")."""

    status: int
    reason: str
    message: str
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    field: str | None = None  # the first error's field, when there is one

    def __str__(self) -> str:
        return f"{self.reason} ({self.status}): {self.message}"

    @classmethod
    def from_body(cls, status: int, body: bytes) -> ApiError:
        """Build from a response body; never fails, whatever the body holds."""
        fallback_reason = _REASONS.get(status, "Internal" if status >= 500 else "BadRequest")
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if not isinstance(parsed, dict):
            text = body.decode("utf-8", "replace").strip()[:200]
            return cls(status, fallback_reason, text or f"HTTP {status} with no error body")
        errors = parsed.get("errors")
        reason = parsed.get("reason")
        message = parsed.get("message")
        first_field = parsed.get("field")
        return cls(
            status=status,
            reason=reason if isinstance(reason, str) else fallback_reason,
            message=message if isinstance(message, str) else f"HTTP {status}",
            errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
            field=first_field if isinstance(first_field, str) else None,
        )


class ControlUnreachable(Exception):
    """No usable answer from the control plane: refused, timed out, or cut off."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(url, problem)
        self.url = url
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"cannot reach the control plane at {self.url}: {self.problem}. "
            "Start one with `gossamer control`, or point at a running one with "
            "--control URL (or GOSSAMER_CONTROL)."
        )
