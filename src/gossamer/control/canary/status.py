"""A Canary's `status` document: read progress from it, write a decision into it. Pure.

    progress = progress_of(status, generation)   # NOT_STARTED when the spec changed since
    status = record_action(status, plan, action, measured, generation, now)

Every decision but a routine wait is appended to `history` with the numbers behind it
(bounded to the last MAX_HISTORY); a hold is recorded once per step, not on every tick.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gossamer.control.canary.decide import (
    NOT_STARTED,
    Action,
    Measured,
    Plan,
    Progress,
)

MAX_HISTORY = 50


def progress_of(status: dict[str, Any] | None, generation: int) -> Progress:
    """The run's progress; a spec changed since the run began starts a new run."""
    status = status or {}
    if status.get("observedGeneration") != generation or not status.get("phase"):
        return NOT_STARTED
    try:
        return Progress(str(status["phase"]), int(status["step"]), float(status["stepStartedAt"]))
    except (KeyError, TypeError, ValueError):
        return NOT_STARTED  # hand-edited or truncated status: start over, never crash


def weights_for(canary_weight: int) -> dict[str, int]:
    return {"baseline": 100 - canary_weight, "canary": canary_weight}


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_action(
    status: dict[str, Any] | None,
    plan: Plan,
    action: Action,
    measured: Measured | None,
    generation: int,
    now: float,
) -> dict[str, Any]:
    """The status after `action`, with the latest numbers measured."""
    old = dict(status or {})
    if old.get("observedGeneration") != generation:
        old = {k: v for k, v in old.items() if k == "warnings"}  # a new run
    progress = action.progress
    weights = old.get("weights") or weights_for(0)
    if action.canary_weight is not None:
        weights = weights_for(action.canary_weight)
    thresholds = {
        "maxErrorRate": plan.max_error_rate,
        "maxP99": plan.max_p99,
        "minRequests": plan.min_requests,
    }
    numbers = _measured_doc(measured)
    new = {
        **old,
        "phase": progress.phase,
        "step": progress.step,
        "steps": list(plan.steps),
        "stepStartedAt": progress.step_started,
        "observedGeneration": generation,
        "weights": weights,
        "message": action.reason,
        "measured": {**numbers, "thresholds": thresholds, "at": _stamp(now)},
    }
    history = list(old.get("history") or [])
    if _worth_recording(action, history):
        entry = {
            "time": _stamp(now),
            "action": action.kind,
            "step": progress.step,
            "weights": weights,
            "reason": action.reason,
            **numbers,
        }
        history = [*history, entry][-MAX_HISTORY:]
    new["history"] = history
    return new


def _worth_recording(action: Action, history: list[dict[str, Any]]) -> bool:
    if action.kind == "wait":
        return False
    if action.kind == "hold" and history:
        last = history[-1]
        return not (last.get("action") == "hold" and last.get("step") == action.progress.step)
    return True


def _measured_doc(measured: Measured | None) -> dict[str, Any]:
    if measured is None:
        return {"canary": None, "baseline": None}
    return {"canary": measured.canary.to_doc(), "baseline": measured.baseline.to_doc()}
