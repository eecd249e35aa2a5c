"""Telemetry the control plane aggregates from proxies: pure, driven by a `now` argument."""

from gossamer.control.telemetry.aggregator import TelemetryStore, summarize
from gossamer.control.telemetry.histogram import BUCKETS, quantile
from gossamer.control.telemetry.report import Report, ReportError, parse_report

__all__ = [
    "BUCKETS",
    "Report",
    "ReportError",
    "TelemetryStore",
    "parse_report",
    "quantile",
    "summarize",
]
