"""The one error body every endpoint returns (docs/protocol.md, "Errors")."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gossamer.model import FieldError, ValidationFailed

log = logging.getLogger(__name__)

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    413: "PayloadTooLarge",
    422: "Invalid",
    500: "Internal",
}


class ApiError(Exception):
    """An error that becomes a response with the protocol's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[FieldError] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.reason = reason or REASONS.get(status, "BadRequest" if status < 500 else "Internal")

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
        }
        if self.errors:
            out["field"] = self.errors[0].field
            out["errors"] = [e.to_dict() for e in self.errors]
        return out

    def response(self) -> web.Response:
        return json_response(self.body(), status=self.status)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the protocol's error body; nothing escapes as a bare 500 page."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except ValidationFailed as exc:  # a rule checked after parsing (e.g. against stored state)
        return ApiError(422, str(exc), exc.errors).response()
    except web.HTTPRequestEntityTooLarge:
        return ApiError(413, "request body is larger than 8 MiB").response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return ApiError(exc.status, exc.reason or "error").response()
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return ApiError(500, "internal error; see the control plane's log").response()


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a precise 400/413."""
    raw = await request.read()  # raises HTTPRequestEntityTooLarge past client_max_size
    if not raw:
        raise ApiError(400, "request body is empty; a JSON document is required")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(body).__name__}")
    return body
