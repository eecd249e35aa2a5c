"""Inbound: mesh traffic into the local app."""
