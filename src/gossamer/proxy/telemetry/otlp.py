"""OTLP/HTTP JSON encoding of finished spans (opentelemetry-proto's JSON mapping).

Pure: records in, the `ExportTraceServiceRequest` JSON object out. The OTLP JSON mapping
differs from plain protobuf JSON in two ways we follow: trace and span ids are hex strings
(not base64), and enum values are integers.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable

SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
STATUS_UNSET = 0
STATUS_ERROR = 2
_SCOPE = '{"name":"gossamer.proxy","version":"1"}'
_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii

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


def _value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return '{"boolValue":true}' if value else '{"boolValue":false}'
    if isinstance(value, int):
        return '{"intValue":"' + str(value) + '"}'  # int64 travels as a string in OTLP JSON
    return '{"stringValue":' + _quote(value) + "}"


def attributes(pairs: list[Attribute] | tuple[Attribute, ...]) -> str:
    """A JSON array of KeyValue; keys are quoted too (they are ours, but cheap to be sure)."""
    return (
        "["
        + ",".join('{"key":' + _quote(k) + ',"value":' + _value(v) + "}" for k, v in pairs)
        + "]"
    )


def encode_span(record: SpanRecord) -> str:
    """One Span as JSON text. Built as a string: a dict per attribute and `json.dumps`
    cost several times more, and with 100 % sampling this runs once per request."""
    parent = f',"parentSpanId":"{record.parent_id}"' if record.parent_id else ""
    state = ',"traceState":' + _quote(record.tracestate) if record.tracestate else ""
    return (
        f'{{"traceId":"{record.trace_id}","spanId":"{record.span_id}"{parent}{state},'
        f'"name":{_quote(record.name)},"kind":{record.kind},'
        f'"startTimeUnixNano":"{record.start_ns}","endTimeUnixNano":"{record.end_ns}",'
        f'"attributes":{attributes(record.attributes)},'
        f'"status":{{"code":{STATUS_ERROR if record.error else STATUS_UNSET}}}}}'
    )


def encode_request(
    resource: list[Attribute] | tuple[Attribute, ...], records: list[SpanRecord]
) -> bytes:
    """The body of `POST /v1/traces` (Content-Type: application/json)."""
    spans = ",".join(encode_span(r) for r in records)
    return (
        f'{{"resourceSpans":[{{"resource":{{"attributes":{attributes(resource)}}},'
        f'"scopeSpans":[{{"scope":{_SCOPE},"spans":[{spans}]}}]}}]}}'
    ).encode()
