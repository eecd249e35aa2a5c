"""Runs the Store conformance suite (conformance.py) against every implementation."""

from conformance import *  # noqa: F403
