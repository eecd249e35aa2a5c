"""The canary controller's pure decisions, in virtual time with synthetic metrics."""

from __future__ import annotations

import pytest

from gossamer.control.canary.decide import (
    ABORTED,
    NOT_STARTED,
    PAUSED,
    PROGRESSING,
    PROMOTED,
    CommandRefused,
    Measured,
    Plan,
    Progress,
    SubsetStats,
    decide,
)
from gossamer.control.canary.status import progress_of, record_action

PLAN = Plan(
    steps=(5, 25, 50, 100), interval=30.0, max_error_rate=0.01, max_p99=0.25, min_requests=100
)
T0 = 1_000_000.0


def healthy(requests: int = 500, p99: float = 0.05) -> Measured:
    return Measured(SubsetStats(requests, 0.999, p99), SubsetStats(requests * 9, 0.999, 0.05))


def at(step: int, started: float = T0) -> Progress:
    return Progress(PROGRESSING, step, started)


def test_first_decision_starts_at_the_first_step() -> None:
    action = decide(PLAN, NOT_STARTED, None, T0)
    assert action.kind == "start" and action.canary_weight == 5
    assert action.progress == Progress(PROGRESSING, 0, T0)


def test_waits_inside_the_interval_and_advances_after_it_on_healthy_metrics() -> None:
    assert decide(PLAN, at(0), healthy(), T0 + 29.9).kind == "wait"
    action = decide(PLAN, at(0), healthy(), T0 + 30.0)
    assert action.kind == "advance" and action.canary_weight == 25
    assert action.progress == Progress(PROGRESSING, 1, T0 + 30.0)


def test_walks_every_step_then_promotes() -> None:
    progress, now, weights = NOT_STARTED, T0, []
    for _ in range(10):
        action = decide(PLAN, progress, healthy(), now)
        if action.canary_weight is not None:
            weights.append(action.canary_weight)
        progress = action.progress
        if progress.phase == PROMOTED:
            break
        now += PLAN.interval
    assert weights == [5, 25, 50, 100, 100]
    assert progress.phase == PROMOTED and now == T0 + 4 * PLAN.interval


def test_holds_on_too_few_requests_and_advances_once_there_are_enough() -> None:
    few = healthy(requests=99)
    action = decide(PLAN, at(1), few, T0 + 45)
    assert action.kind == "hold" and action.canary_weight is None
    assert "99 < 100" in action.reason and action.progress == at(1)
    assert decide(PLAN, at(1), healthy(requests=100), T0 + 60).kind == "advance"


def test_too_few_requests_never_roll_back_even_if_all_fail() -> None:
    failing = Measured(SubsetStats(10, 0.0, 5.0), SubsetStats(1000, 1.0, 0.01))
    assert decide(PLAN, at(0), failing, T0 + 5).kind == "wait"
    assert decide(PLAN, at(0), failing, T0 + 31).kind == "hold"


def test_error_rate_breach_rolls_back_at_once_mid_interval() -> None:
    bad = Measured(SubsetStats(200, 0.8, 0.01), SubsetStats(4000, 1.0, 0.01))
    action = decide(PLAN, at(2), bad, T0 + 3)
    assert action.kind == "rollback" and action.canary_weight == 0
    assert action.progress.phase == ABORTED
    assert "error rate 20.00% > 1%" in action.reason and "50%" in action.reason


def test_error_rate_at_the_threshold_passes() -> None:
    edge = Measured(SubsetStats(1000, 0.99, 0.01), SubsetStats(1000, 1.0, 0.01))
    assert decide(PLAN, at(0), edge, T0 + 30).kind == "advance"


def test_p99_breach_rolls_back() -> None:
    action = decide(PLAN, at(0), healthy(p99=0.3), T0 + 1)
    assert action.kind == "rollback" and "p99 300.0ms > 250ms" in action.reason


def test_no_latency_threshold_means_latency_is_not_checked() -> None:
    plan = Plan(PLAN.steps, PLAN.interval, PLAN.max_error_rate, None, PLAN.min_requests)
    assert decide(plan, at(0), healthy(p99=9.0), T0 + 30).kind == "advance"


def test_no_metrics_source_holds() -> None:
    action = decide(PLAN, at(0), None, T0 + 60)
    assert action.kind == "hold" and action.canary_weight is None


def test_operator_abort_and_promote_from_any_running_phase() -> None:
    for phase in (PROGRESSING, PAUSED):
        progress = Progress(phase, 1, T0)
        abort = decide(PLAN, progress, healthy(), T0 + 1, "abort")
        assert abort.kind == "rollback" and abort.canary_weight == 0
        assert abort.progress.phase == ABORTED and "operator" in abort.reason
        promote = decide(PLAN, progress, None, T0 + 1, "promote")
        assert promote.kind == "promote" and promote.canary_weight == 100


def test_commands_on_a_finished_canary_are_refused() -> None:
    for phase in (PROMOTED, ABORTED):
        with pytest.raises(CommandRefused, match=phase):
            decide(PLAN, Progress(phase, 3, T0), None, T0, "abort")
        assert decide(PLAN, Progress(phase, 3, T0), healthy(), T0 + 99).kind == "wait"
    with pytest.raises(CommandRefused, match="unknown command"):
        decide(PLAN, at(0), None, T0, "explode")


def test_pause_holds_the_step_and_resume_restarts_its_interval() -> None:
    paused = decide(PLAN, at(1), healthy(), T0 + 10, "pause")
    assert paused.progress == Progress(PAUSED, 1, T0 + 10) and paused.canary_weight is None
    assert decide(PLAN, paused.progress, healthy(), T0 + 500).kind == "wait"
    with pytest.raises(CommandRefused):
        decide(PLAN, paused.progress, None, T0 + 11, "pause")
    resumed = decide(PLAN, paused.progress, None, T0 + 600, "resume")
    assert resumed.progress == Progress(PROGRESSING, 1, T0 + 600)
    assert decide(PLAN, resumed.progress, healthy(), T0 + 620).kind == "wait"
    with pytest.raises(CommandRefused, match="not Paused"):
        decide(PLAN, at(1), None, T0, "resume")


def test_a_restarted_controller_resumes_from_the_status_it_wrote() -> None:
    generation = 3
    status: dict = {}
    progress = progress_of(status, generation)
    now = T0
    for _ in range(2):  # start, then one advance
        action = decide(PLAN, progress, healthy(), now)
        status = record_action(status, PLAN, action, healthy(), generation, now)
        progress = progress_of(status, generation)
        now += PLAN.interval
    # A new controller process reads only the stored status (as JSON would carry it).
    import json

    reread = progress_of(json.loads(json.dumps(status)), generation)
    assert reread == Progress(PROGRESSING, 1, T0 + PLAN.interval)
    assert decide(PLAN, reread, healthy(), now - 1).kind == "wait"
    assert decide(PLAN, reread, healthy(), now).canary_weight == 50
    assert [h["action"] for h in status["history"]] == ["start", "advance"]
    assert status["weights"] == {"baseline": 75, "canary": 25}


def test_a_changed_spec_starts_a_new_run() -> None:
    status = record_action({}, PLAN, decide(PLAN, NOT_STARTED, None, T0), None, 1, T0)
    assert progress_of(status, 1).phase == PROGRESSING
    assert progress_of(status, 2) == NOT_STARTED
    assert progress_of({"phase": "Progressing", "observedGeneration": 1}, 1) == NOT_STARTED


def test_history_has_the_numbers_and_records_a_hold_once_per_step() -> None:
    status = record_action({}, PLAN, decide(PLAN, NOT_STARTED, None, T0), None, 1, T0)
    few = healthy(requests=7)
    for t in (31, 32, 33):
        status = record_action(status, PLAN, decide(PLAN, at(0), few, T0 + t), few, 1, T0 + t)
    holds = [h for h in status["history"] if h["action"] == "hold"]
    assert len(holds) == 1
    assert holds[0]["canary"] == {"requests": 7, "errorRate": 0.001, "p99": 0.05}
    assert status["measured"]["thresholds"] == {
        "maxErrorRate": 0.01,
        "maxP99": 0.25,
        "minRequests": 100,
    }
    bad = Measured(SubsetStats(300, 0.5, 0.01), SubsetStats(300, 1.0, 0.01))
    status = record_action(status, PLAN, decide(PLAN, at(0), bad, T0 + 40), bad, 1, T0 + 40)
    last = status["history"][-1]
    assert last["action"] == "rollback" and last["canary"]["errorRate"] == 0.5
    assert last["baseline"]["requests"] == 300 and status["phase"] == ABORTED
    assert status["weights"] == {"baseline": 100, "canary": 0}


def test_plan_from_spec_reads_units() -> None:
    plan = Plan.from_spec(
        {
            "steps": [10, 100],
            "interval": "1m30s",
            "thresholds": {"maxErrorRate": 2.5, "maxP99": "250ms", "minRequests": 7},
        }
    )
    assert plan == Plan((10, 100), 90.0, 0.025, 0.25, 7)


def test_a_breach_the_baseline_shares_holds_instead_of_rolling_back() -> None:
    # Both versions fail 20 %: a shared dependency, not the canary. Hold, do not blame it.
    both_bad = Measured(SubsetStats(200, 0.8, 0.01), SubsetStats(4000, 0.78, 0.01))
    action = decide(PLAN, at(1), both_bad, T0 + 40)
    assert action.kind == "hold" and action.progress == at(1)
    assert "baseline is as bad" in action.reason and "error rate 22.00%" in action.reason


def test_a_canary_worse_than_a_failing_baseline_still_rolls_back() -> None:
    worse = Measured(SubsetStats(200, 0.7, 0.01), SubsetStats(4000, 0.9, 0.01))
    assert decide(PLAN, at(1), worse, T0 + 3).kind == "rollback"
    slower = Measured(SubsetStats(200, 0.8, 0.9), SubsetStats(4000, 0.8, 0.3))
    assert decide(PLAN, at(1), slower, T0 + 3).kind == "rollback"


def test_a_baseline_with_too_few_requests_is_not_an_excuse() -> None:
    thin = Measured(SubsetStats(200, 0.8, 0.01), SubsetStats(50, 0.5, 0.01))
    assert decide(PLAN, at(1), thin, T0 + 3).kind == "rollback"
