"""Automated canary analysis: pure decisions (decide, status, routes) and the runner."""
