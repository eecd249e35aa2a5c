"""The hand-written OTLP/HTTP JSON encoding, decoded by the official opentelemetry-proto."""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gossamer.proxy.telemetry.otlp import SPAN_KIND_CLIENT, SpanRecord, encode_request

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def decode_otlp_json(body: dict[str, Any]) -> ExportTraceServiceRequest:
    """OTLP JSON carries ids as hex where protobuf JSON expects base64 (as collectors do)."""
    for rs in body.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for field in ("traceId", "spanId", "parentSpanId"):
                    if field in span:
                        span[field] = base64.b64encode(bytes.fromhex(span[field])).decode()
    return json_format.Parse(json.dumps(body), ExportTraceServiceRequest())


def test_encoding_parses_as_an_export_request() -> None:
    record = SpanRecord(
        "GET",
        SPAN_KIND_CLIENT,
        TRACE,
        "00f067aa0ba902b7",
        "1111111111111111",
        1_764_120_000_000_000_000,
        1_764_120_000_250_000_000,
        [
            ("http.request.method", 'G"E\\T\n\u00e9'),
            ("http.response.status_code", 503),
            ("x.ok", True),
        ],
        error=True,
    )
    root = SpanRecord("GET", 2, TRACE, "2222222222222222", "", 1, 2, [], tracestate="k=v")
    body = encode_request([("service.name", "frontend")], [record, root])
    request = decode_otlp_json(json.loads(body))
    (resource_spans,) = request.resource_spans
    assert resource_spans.resource.attributes[0].key == "service.name"
    assert resource_spans.resource.attributes[0].value.string_value == "frontend"
    spans = resource_spans.scope_spans[0].spans
    assert [s.span_id.hex() for s in spans] == ["00f067aa0ba902b7", "2222222222222222"]
    client = spans[0]
    assert client.trace_id.hex() == TRACE
    assert client.parent_span_id.hex() == "1111111111111111"
    assert client.kind == Span.SPAN_KIND_CLIENT
    assert client.end_time_unix_nano - client.start_time_unix_nano == 250_000_000
    attrs = {a.key: a.value for a in client.attributes}
    assert attrs["http.response.status_code"].int_value == 503
    assert attrs["x.ok"].bool_value is True
    assert attrs["http.request.method"].string_value == 'G"E\\T\n\u00e9'  # escaped right
    assert client.status.code == Status.STATUS_CODE_ERROR
    assert spans[1].parent_span_id == b"" and spans[1].kind == Span.SPAN_KIND_SERVER
    assert spans[1].trace_state == "k=v" and spans[1].status.code == Status.STATUS_CODE_UNSET
