"""Outbound: app requests to mesh services (logical route → concrete backend → endpoint)."""
