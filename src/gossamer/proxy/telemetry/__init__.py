"""Sidecar telemetry: counters, Prometheus exposition (access log and tracing later)."""
