"""Progressive delivery: the Canary kind (automated canary analysis).

A Canary shifts a service's default traffic from a baseline subset to a canary subset step
by step, through the HTTPRoute it names, and checks the canary's golden metrics against
thresholds at every step. Its `status` is written only by the control plane.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from gossamer.model.common import DNSLabel, Duration, Labels, Strict, duration_seconds

MIN_INTERVAL_SECONDS = 0.1  # steps shorter than this cannot gather a telemetry report
MAX_STEPS = 20


class CanaryThresholds(Strict):
    # Percent of the canary's upstream attempts that may fail (5xx or no response).
    maxErrorRate: float = Field(default=1.0, ge=0, le=100)
    # Highest acceptable p99 latency of the canary's attempts; unset: latency not checked.
    maxP99: Duration | None = None
    # Attempts the canary must have served in a step before it is judged.
    minRequests: int = Field(default=100, ge=1, le=10_000_000)


class CanarySpec(Strict):
    service: DNSLabel  # the target Service, in the Canary's namespace
    route: DNSLabel | None = None  # the HTTPRoute driven (created if absent); default: service
    baseline: Labels = Field(default_factory=lambda: {"version": "v1"})
    canary: Labels
    steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100], min_length=1)
    interval: Duration = "30s"
    thresholds: CanaryThresholds = Field(default_factory=CanaryThresholds)

    @field_validator("steps")
    @classmethod
    def _steps_increase(cls, steps: list[int]) -> list[int]:
        if len(steps) > MAX_STEPS:
            raise ValueError(f"at most {MAX_STEPS} steps, got {len(steps)}")
        for i, weight in enumerate(steps):
            if not 1 <= weight <= 100:
                raise ValueError(f"step weights are percentages 1-100, got {weight} at [{i}]")
            if i and weight <= steps[i - 1]:
                raise ValueError(f"steps must increase, got {steps[i - 1]} then {weight}")
        return steps

    @field_validator("interval")
    @classmethod
    def _interval_long_enough(cls, interval: str) -> str:
        if duration_seconds(interval) < MIN_INTERVAL_SECONDS:
            raise ValueError(f"interval must be at least {MIN_INTERVAL_SECONDS * 1000:g}ms")
        return interval

    @model_validator(mode="after")
    def _subsets_differ(self) -> CanarySpec:
        if not self.canary:
            raise ValueError("canary needs the labels of the canary subset, e.g. version: v2")
        if not self.baseline:
            raise ValueError("baseline needs the labels of the baseline subset, e.g. version: v1")
        for field, labels in (("canary", self.canary), ("baseline", self.baseline)):
            # Telemetry tells subsets apart by their `version` label (docs/protocol.md).
            if "version" not in labels:
                raise ValueError(f"{field} labels need a 'version' key, got {labels}")
        if self.canary == self.baseline:
            raise ValueError(f"canary and baseline select the same subset {self.canary}")
        return self

    @property
    def route_name(self) -> str:
        return self.route or self.service
