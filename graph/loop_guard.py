"""Loop guard over the trajectory: repeats, cycles, repeated failures, plateaus; escalation."""

from __future__ import annotations

from collections import Counter

from postlab.records.run import GuardConfig
from postlab.records.steps import WAIT_ACTION, GuardEvent, TrajectoryRecord

# One rung per firing; "ask_human" is skipped when nobody is attached to answer.
LADDER = ("redirect", "switch_technique", "ask_human", "stop")


def _repeat(window: list[TrajectoryRecord], config: GuardConfig) -> tuple[str, str] | None:
    # The same action again and again in a row; interleaved repeats are the cycle check's job.
    tail = window[-config.repeat_threshold :]
    if len(tail) == config.repeat_threshold and len({r.signature for r in tail}) == 1:
        record = tail[-1]
        detail = f"{record.agent}.{record.action} repeated {len(tail)} times in a row"
        return f"repeat:{record.signature}", detail
    return None


def _cycle(window: list[TrajectoryRecord], config: GuardConfig) -> tuple[str, str] | None:
    signatures = [record.signature for record in window]
    for period in (2, 3):
        span = period * config.cycle_repeats
        if len(signatures) < span:
            continue
        tail = signatures[-span:]
        unit = tail[:period]
        if len(set(unit)) == period and all(tail[i] == unit[i % period] for i in range(span)):
            names = " → ".join(f"{r.agent}.{r.action}" for r in window[-span:][:period])
            return f"cycle:{'|'.join(unit)}", f"cycle {names} repeated {config.cycle_repeats} times"
    return None


def _failure(window: list[TrajectoryRecord], config: GuardConfig) -> tuple[str, str] | None:
    failures = Counter(
        (record.agent, record.error_kind, record.error_normalized)
        for record in window
        if record.status == "failed"
    )
    for (agent, kind, normalized), times in failures.most_common():
        if times >= config.failure_threshold:
            detail = f"{agent} failed {times} times with the same {kind} error: {normalized}"
            return f"failure:{agent}:{kind}:{normalized}", detail
    return None


def _scores(records: list[TrajectoryRecord]) -> list[TrajectoryRecord]:
    return [r for r in records if r.agent == "evaluator" and r.score is not None]


def _plateau(
    trajectory: list[TrajectoryRecord], since: int, config: GuardConfig
) -> tuple[str, str] | None:
    k = config.plateau_evaluations
    recent = [r for r in _scores(trajectory) if r.step > since and r.action != "baseline"][-k:]
    if len(recent) < k:
        return None
    earlier = [r.score for r in _scores(trajectory) if r.step < recent[0].step]
    best_before = max(earlier, default=0.0)
    if max(r.score for r in recent) < best_before + config.min_improvement:
        steps = ",".join(str(r.step) for r in recent)
        detail = f"no improvement over {best_before:.3f} in the last {k} evaluations"
        return f"plateau:{steps}", detail
    return None


def inspect(
    trajectory: list[TrajectoryRecord],
    fired: list[GuardEvent],
    config: GuardConfig,
    human_attached: bool,
    step: int,
    schedule_running: bool = False,
) -> GuardEvent | None:
    """The first loop pattern in the records since the last firing, with its escalation rung.

    Records that already triggered a firing are never counted again, so a pattern fires once;
    if the loop goes on regardless, it re-forms from new records and climbs the next rung.
    While the best model is the latest iteration and its schedule has steps left
    (`schedule_running`), flat scores are that schedule annealing, not a plateau: it is bounded
    by the schedule's length, and the evaluator only lets a score within noise of the best hold.
    """
    since = max((event.step for event in fired), default=-1)
    acted = [record for record in trajectory if record.action != WAIT_ACTION]
    window = [record for record in acted if record.step > since][-config.window :]
    checks = (
        ("repeat", lambda: _repeat(window, config)),
        ("cycle", lambda: _cycle(window, config)),
        ("failure", lambda: _failure(window, config)),
        ("plateau", lambda: None if schedule_running else _plateau(trajectory, since, config)),
    )
    for pattern, check in checks:
        found = check()
        if found is None:
            continue
        key, detail = found
        return GuardEvent(
            pattern=pattern,
            key=key,
            detail=detail,
            rung=next_rung(len(fired), human_attached),
            step=step,
        )
    return None


def next_rung(firings_so_far: int, human_attached: bool) -> str:
    """The escalation rung for the next firing, skipping 'ask_human' with no human attached."""
    ladder = [rung for rung in LADDER if human_attached or rung != "ask_human"]
    return ladder[min(firings_so_far, len(ladder) - 1)]
