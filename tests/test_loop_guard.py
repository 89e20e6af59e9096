"""Loop guard: each pattern is caught once, and escalation climbs one rung per firing."""

from postlab.agents.reports import EvaluationRecord
from postlab.graph.loop_guard import inspect, next_rung
from postlab.graph.state import GuardConfig, TrajectoryRecord

CONFIG = GuardConfig(window=12, repeat_threshold=3, cycle_repeats=3, failure_threshold=3)


def record(step, signature, agent="trainer", status="ok", error=None):
    return TrajectoryRecord(
        step=step,
        agent=agent,
        action="train",
        signature=signature,
        status=status,
        error_kind="oom" if error else None,
        error_normalized=error,
        started_at=0.0,
        wall_s=1.0,
    )


def evaluation(iteration, strict):
    return EvaluationRecord(
        label="baseline" if iteration == 0 else f"iter-{iteration}",
        iteration=iteration,
        checkpoint="c",
        strict=strict,
        lenient=strict,
        n=10,
    )


def test_repeated_signature_fires_once():
    trajectory = [record(i, "same") for i in range(3)]
    event = inspect(trajectory, [], [], CONFIG, False, 3)
    assert event.pattern == "repeat" and event.rung == "redirect"
    # The same records still in the window do not fire again.
    assert inspect(trajectory, [], [event], CONFIG, False, 4) is None


def test_short_cycle_is_caught():
    trajectory = [record(i, sig) for i, sig in enumerate(["a", "b"] * 3)]
    config = CONFIG.model_copy(update={"repeat_threshold": 5})
    event = inspect(trajectory, [], [], config, False, 6)
    assert event.pattern == "cycle"
    assert "repeated 3 times" in event.detail


def test_same_failure_under_different_arguments():
    trajectory = [
        record(i, f"sig-{i}", status="failed", error="out of memory tried to allocate n gib")
        for i in range(3)
    ]
    event = inspect(trajectory, [], [], CONFIG, False, 3)
    assert event.pattern == "failure"
    assert "same oom error" in event.detail


def test_plateau_over_last_k_evaluations():
    evaluations = [evaluation(0, 0.1), evaluation(1, 0.6), evaluation(2, 0.6), evaluation(3, 0.59), evaluation(4, 0.6)]
    event = inspect([], evaluations, [], CONFIG, False, 9)
    assert event.pattern == "plateau"
    assert inspect([], evaluations[:4], [], CONFIG, False, 9) is None  # 0.6 was a gain then


def test_escalation_ladder_skips_human_when_none_attached():
    assert [next_rung(i, False) for i in range(4)] == ["redirect", "switch_technique", "stop", "stop"]
    assert [next_rung(i, True) for i in range(4)] == ["redirect", "switch_technique", "ask_human", "stop"]
