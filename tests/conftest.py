"""Shared fixtures. Tests use port 0 and wait for readiness events, never sleeps."""
