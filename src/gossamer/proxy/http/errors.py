"""Locally generated error responses, each tagged with an `x-gossamer-reason`."""

from __future__ import annotations

_STATUS_TEXT = {
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}

BAD_REQUEST = "bad_request"
REQUEST_TIMEOUT = "request_timeout"
HEADERS_TOO_LARGE = "headers_too_large"
NO_ROUTE = "no_route"
UNKNOWN_SERVICE = "unknown_service"
EGRESS_REFUSED = "egress_refused"
NO_HEALTHY_ENDPOINT = "no_healthy_endpoint"
INVALID_BACKEND = "invalid_backend"  # a backendRef names no Service (500, Gateway API)
CONNECT_FAILURE = "connect_failure"
UPSTREAM_TIMEOUT = "upstream_timeout"
UPSTREAM_RESET = "upstream_reset"
BAD_UPSTREAM_RESPONSE = "bad_upstream_response"
OVERFLOW = "overflow"
FORBIDDEN = "forbidden"
RBAC_DENIED = "rbac_denied"  # an AuthorizationPolicy refused the request (403)
REDIRECT = "redirect"  # a RequestRedirect filter answered (3xx with location)
FAULT_INJECTED = "fault_injected"  # a Fault filter's abort (resilience testing)
BODY_TOO_LARGE = "body_too_large"  # a request body past the gateway's --max-body (413)
BAD_PATH = "bad_path"  # a request path refused before authorization (400, see proxy/paths.py)


class ProxyError(Exception):
    """A request that ends in a locally generated response."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def error_response(
    status: int, reason: str, *, close: bool, request_id: bytes = b"", extra: bytes = b""
) -> bytes:
    """The full bytes of a small plain-text error response; `extra`: whole header lines."""
    body = reason.encode() + b"\n"
    parts = [
        b"HTTP/1.1 %d %s\r\n" % (status, _STATUS_TEXT.get(status, b"Error")),
        b"content-type: text/plain\r\n",
        b"content-length: %d\r\n" % len(body),
        b"x-gossamer-reason: " + reason.encode() + b"\r\n",
    ]
    if request_id:
        parts.append(b"x-request-id: " + request_id + b"\r\n")
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(extra)
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)
