"""Constants of the control-plane protocol that both sides must agree on (docs/protocol.md).

Standard library only and imports nothing of the project, so the sidecar (which may not
import control/) and the control plane share one definition instead of two copies.
"""

from __future__ import annotations

# Latency histogram upper bounds in seconds ("Telemetry from proxies"); counts carry one
# more entry for +Inf. Every proxy uses these, so the control plane merges by adding counts.
BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
SLOTS = len(BUCKETS) + 1
