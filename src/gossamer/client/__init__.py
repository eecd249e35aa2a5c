"""Typed, synchronous client of the control-plane REST API (docs/protocol.md). Speaks dicts."""

from gossamer.client.control import ControlClient
from gossamer.client.errors import ApiError, ControlUnreachable

__all__ = ["ApiError", "ControlClient", "ControlUnreachable"]
