"""Runs the Store conformance suite against every implementation (see conformance.py)."""

from conformance import *  # noqa: F403
from conformance_model import *  # noqa: F403
from conformance_watch import *  # noqa: F403
