"""OTLP/HTTP JSON encoding of finished spans (opentelemetry-proto's JSON mapping).

Pure: records in, the `ExportTraceServiceRequest` JSON object out. The OTLP JSON mapping
differs from plain protobuf JSON in two ways we follow: trace and span ids are hex strings
(not base64), and enum values are integers.
"""

from __future__ import annotations

from typing import Any

SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
STATUS_UNSET = 0
STATUS_ERROR = 2
SCOPE = {"name": "gossamer.proxy", "version": "1"}

Attribute = tuple[str, str | int | bool]


class SpanRecord:
    """One finished span, as the exporter queues it."""

    __slots__ = (
        "attributes",
        "end_ns",
        "error",
        "kind",
        "name",
        "parent_id",
        "span_id",
        "start_ns",
        "trace_id",
        "tracestate",
    )

    def __init__(
        self,
        name: str,
        kind: int,
        trace_id: str,
        span_id: str,
        parent_id: str,
        start_ns: int,
        end_ns: int,
        attributes: list[Attribute],
        error: bool = False,
        tracestate: str = "",
    ) -> None:
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attributes = attributes
        self.error = error
        self.tracestate = tracestate


def any_value(value: str | int | bool) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 travels as a string in OTLP JSON
    return {"stringValue": value}


def attributes(pairs: list[Attribute] | tuple[Attribute, ...]) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(value)} for key, value in pairs]


def encode_span(record: SpanRecord) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": record.trace_id,
        "spanId": record.span_id,
        "name": record.name,
        "kind": record.kind,
        "startTimeUnixNano": str(record.start_ns),
        "endTimeUnixNano": str(record.end_ns),
        "attributes": attributes(record.attributes),
        "status": {"code": STATUS_ERROR if record.error else STATUS_UNSET},
    }
    if record.parent_id:
        span["parentSpanId"] = record.parent_id
    if record.tracestate:
        span["traceState"] = record.tracestate
    return span


def encode_request(
    resource: list[Attribute] | tuple[Attribute, ...], records: list[SpanRecord]
) -> dict[str, Any]:
    """The body of `POST /v1/traces` (Content-Type: application/json)."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes(resource)},
                "scopeSpans": [{"scope": SCOPE, "spans": [encode_span(r) for r in records]}],
            }
        ]
    }
