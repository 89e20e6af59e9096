"""Loop guard: each pattern is caught once, and escalation climbs one rung per firing."""

from postlab.graph.loop_guard import inspect, next_rung
from postlab.records.run import GuardConfig
from postlab.records.steps import TrajectoryRecord

CONFIG = GuardConfig(window=12, repeat_threshold=3, cycle_repeats=3, failure_threshold=3)


def record(step, signature, agent="trainer", action="train", status="ok", error=None, score=None):
    return TrajectoryRecord(
        step=step,
        agent=agent,
        action=action,
        signature=signature,
        status=status,
        error_kind="oom" if error else None,
        error_normalized=error,
        score=score,
        started_at=0.0,
        wall_s=1.0,
    )


def evaluation(step, score, action="evaluate"):
    return record(step, f"eval-{step}", agent="evaluator", action=action, score=score)


def test_repeated_signature_fires_once_then_escalates_if_the_loop_goes_on():
    trajectory = [record(i, "same") for i in range(1, 4)]
    event = inspect(trajectory, [], CONFIG, False, 3)
    assert event.pattern == "repeat" and event.rung == "redirect"
    # The records that fired are not counted again.
    trajectory.append(record(4, "same"))
    assert inspect(trajectory, [event], CONFIG, False, 4) is None
    # The loop re-forms from new records: the next firing climbs a rung.
    trajectory += [record(5, "same"), record(6, "same")]
    second = inspect(trajectory, [event], CONFIG, False, 6)
    assert second.pattern == "repeat" and second.rung == "switch_technique"
    trajectory += [record(i, "same") for i in range(7, 10)]
    third = inspect(trajectory, [event, second], CONFIG, False, 9)
    assert third.rung == "stop"


def test_short_cycle_is_caught():
    trajectory = [record(i, sig) for i, sig in enumerate(["a", "b"] * 3, start=1)]
    config = CONFIG.model_copy(update={"repeat_threshold": 5})
    event = inspect(trajectory, [], config, False, 6)
    assert event.pattern == "cycle"
    assert "repeated 3 times" in event.detail


def test_three_step_cycle_is_caught():
    trajectory = [record(i, sig) for i, sig in enumerate(["a", "b", "c"] * 3, start=1)]
    config = CONFIG.model_copy(update={"repeat_threshold": 5})
    assert inspect(trajectory, [], config, False, 9).pattern == "cycle"


def test_same_failure_under_different_arguments():
    trajectory = [
        record(i, f"sig-{i}", status="failed", error="out of memory tried to allocate n gib")
        for i in range(1, 4)
    ]
    event = inspect(trajectory, [], CONFIG, False, 3)
    assert event.pattern == "failure"
    assert "same oom error" in event.detail


def test_different_failures_do_not_fire():
    trajectory = [
        record(i, f"sig-{i}", status="failed", error=f"error kind {kind}")
        for i, kind in enumerate(["a", "b", "c"], start=1)
    ]
    assert inspect(trajectory, [], CONFIG, False, 3) is None


def test_plateau_over_last_k_evaluations():
    scores = [
        evaluation(1, 0.1, "baseline"),
        evaluation(2, 0.6),
        evaluation(3, 0.6),
        evaluation(4, 0.59),
        evaluation(5, 0.6),
    ]
    event = inspect(scores, [], CONFIG, False, 5)
    assert event.pattern == "plateau"
    assert "0.600" in event.detail
    assert inspect(scores[:4], [], CONFIG, False, 4) is None  # 0.6 was a gain then
    # While the best is the latest iteration with schedule left, flat scores are that schedule
    # annealing; a repeated action is still a loop.
    assert inspect(scores, [], CONFIG, False, 5, schedule_running=True) is None
    repeats = [record(i, "same") for i in range(6, 9)]
    assert (
        inspect(scores + repeats, [], CONFIG, False, 8, schedule_running=True).pattern == "repeat"
    )


def test_escalation_ladder_skips_human_when_none_attached():
    assert [next_rung(i, False) for i in range(4)] == [
        "redirect",
        "switch_technique",
        "stop",
        "stop",
    ]
    assert [next_rung(i, True) for i in range(4)] == [
        "redirect",
        "switch_technique",
        "ask_human",
        "stop",
    ]
