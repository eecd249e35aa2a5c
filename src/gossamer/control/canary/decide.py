"""The canary controller's decisions. Pure: spec, progress, metrics and `now` in, an Action out.

    action = decide(plan, progress, measured, now)            # a tick
    action = decide(plan, progress, measured, now, "abort")   # an operator's command

A step runs for `interval`. The canary is judged as soon as it has served `minRequests`
attempts in the step: a breach of the error-rate or p99 threshold rolls it back at once,
without waiting for the interval to end. When the interval is over and every check passed,
the next step starts; after the last one the canary is promoted. Too few requests at the
end of an interval holds the step (the weights stay) until enough traffic has been judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gossamer.model.common import duration_seconds

PROGRESSING, PAUSED, PROMOTED, ABORTED = "Progressing", "Paused", "Promoted", "Aborted"
TERMINAL = frozenset({PROMOTED, ABORTED})
COMMANDS = ("promote", "abort", "pause", "resume")

ActionKind = Literal["start", "wait", "hold", "advance", "promote", "rollback", "pause", "resume"]


class CommandRefused(ValueError):
    """An operator command that does not apply to the canary's current phase."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A Canary spec in the units decisions need."""

    steps: tuple[int, ...]
    interval: float  # seconds
    max_error_rate: float  # fraction 0-1
    max_p99: float | None  # seconds
    min_requests: int

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Plan:
        thresholds = spec.get("thresholds") or {}
        max_p99 = thresholds.get("maxP99")
        return cls(
            steps=tuple(spec.get("steps") or (5, 25, 50, 100)),
            interval=duration_seconds(spec.get("interval", "30s")),
            max_error_rate=float(thresholds.get("maxErrorRate", 1.0)) / 100.0,
            max_p99=None if max_p99 is None else duration_seconds(max_p99),
            min_requests=int(thresholds.get("minRequests", 100)),
        )


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands, as kept in the Canary's status (so a restart resumes it)."""

    phase: str  # "" before the first decision, then one of the phases above
    step: int  # index into Plan.steps; -1 before the first step
    step_started: float  # wall-clock seconds the current step (or pause) began


NOT_STARTED = Progress("", -1, 0.0)


@dataclass(frozen=True, slots=True)
class SubsetStats:
    """Golden metrics of one subset's upstream attempts over a window."""

    requests: int
    success_rate: float | None  # None without requests
    p99: float | None  # seconds

    @property
    def error_rate(self) -> float:
        return 0.0 if self.success_rate is None else 1.0 - self.success_rate

    def to_doc(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errorRate": None if self.success_rate is None else round(self.error_rate, 6),
            "p99": None if self.p99 is None else round(self.p99, 6),
        }


NO_TRAFFIC = SubsetStats(0, None, None)


@dataclass(frozen=True, slots=True)
class Measured:
    canary: SubsetStats
    baseline: SubsetStats


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    progress: Progress  # after the action
    canary_weight: int | None  # percent to send to the canary; None: leave the route alone
    reason: str

    @property
    def changes_route(self) -> bool:
        return self.canary_weight is not None


def decide(
    plan: Plan,
    progress: Progress,
    measured: Measured | None,
    now: float,
    command: str | None = None,
) -> Action:
    """What to do now. `measured` covers the current step (None: no metrics available)."""
    if command is not None:
        return _command(plan, progress, command, now)
    if progress.phase in TERMINAL:
        return Action("wait", progress, None, f"canary is {progress.phase}")
    if progress.phase == "":
        first = Progress(PROGRESSING, 0, now)
        return Action("start", first, plan.steps[0], f"step 1: {plan.steps[0]}% to the canary")
    if progress.phase == PAUSED:
        return Action("wait", progress, None, "paused by the operator")
    weight = plan.steps[progress.step]
    if measured is None:
        return Action("hold", progress, None, "no metrics source: telemetry is not available")
    canary = measured.canary
    if canary.requests >= plan.min_requests:
        breach = _breach(plan, canary)
        if breach and _baseline_as_bad(plan, canary, measured.baseline):
            # The baseline breaks the same thresholds at least as badly: the trouble is
            # around both versions (a shared dependency, the load), not in the canary.
            # Hold the step instead of blaming the canary; roll back once it stands out.
            return Action(
                "hold",
                progress,
                None,
                f"{breach}, but the baseline is as bad ({_breach(plan, measured.baseline)}):"
                f" holding at {weight}%",
            )
        if breach:
            aborted = Progress(ABORTED, progress.step, now)
            return Action("rollback", aborted, 0, f"{breach} at {weight}%: rolled back")
    if now - progress.step_started < plan.interval:
        return Action("wait", progress, None, f"step {progress.step + 1} at {weight}%")
    if canary.requests < plan.min_requests:
        return Action(
            "hold",
            progress,
            None,
            f"too few requests to judge: {canary.requests} < {plan.min_requests} at {weight}%",
        )
    nxt = progress.step + 1
    if nxt >= len(plan.steps):
        done = Progress(PROMOTED, progress.step, now)
        return Action("promote", done, 100, f"every step passed: promoted after {weight}%")
    return Action(
        "advance",
        Progress(PROGRESSING, nxt, now),
        plan.steps[nxt],
        f"step {progress.step + 1} passed; step {nxt + 1}: {plan.steps[nxt]}% to the canary",
    )


def _baseline_as_bad(plan: Plan, canary: SubsetStats, baseline: SubsetStats) -> bool:
    """Whether the baseline, judged on as many requests, breaks a threshold at least as
    badly as the canary (the canary is compared with the baseline, not only the numbers)."""
    if baseline.requests < plan.min_requests or not _breach(plan, baseline):
        return False
    if baseline.error_rate + 1e-9 < canary.error_rate:
        return False
    if plan.max_p99 is not None and canary.p99 is not None:
        if baseline.p99 is None or baseline.p99 < canary.p99:
            return False
    return True


def _breach(plan: Plan, canary: SubsetStats) -> str:
    """The first threshold the canary breaks, described with its numbers; "" if none."""
    # A rate exactly at the threshold passes (1 - 0.99 is 0.0100000000000000009 in floats).
    if canary.error_rate > plan.max_error_rate + 1e-9:
        return (
            f"error rate {canary.error_rate * 100:.2f}% > {plan.max_error_rate * 100:g}%"
            f" over {canary.requests} requests"
        )
    if plan.max_p99 is not None and canary.p99 is not None and canary.p99 > plan.max_p99:
        return f"p99 {canary.p99 * 1000:.1f}ms > {plan.max_p99 * 1000:g}ms"
    return ""


def _command(plan: Plan, progress: Progress, command: str, now: float) -> Action:
    if command not in COMMANDS:
        raise CommandRefused(f"unknown command {command!r}; one of {', '.join(COMMANDS)}")
    if progress.phase in TERMINAL:
        raise CommandRefused(f"canary is already {progress.phase}; start a new one")
    step = max(progress.step, 0)
    if command == "promote":
        return Action("promote", Progress(PROMOTED, step, now), 100, "promoted by the operator")
    if command == "abort":
        return Action("rollback", Progress(ABORTED, step, now), 0, "aborted by the operator")
    if command == "pause":
        if progress.phase == PAUSED:
            raise CommandRefused("canary is already Paused")
        return Action("pause", Progress(PAUSED, step, now), None, "paused by the operator")
    if progress.phase != PAUSED:
        raise CommandRefused(f"canary is {progress.phase or 'not started'}, not Paused")
    # The step restarts: metrics from before the pause do not count toward it.
    resumed = Progress(PROGRESSING, step, now)
    return Action("resume", resumed, None, f"resumed at step {step + 1} ({plan.steps[step]}%)")
