"""Loop guard over the trajectory: repeats, short cycles, repeated failures, plateaus; and escalation."""

from __future__ import annotations

from collections import Counter

from postlab.agents.reports import EvaluationRecord
from postlab.graph.state import GuardConfig, GuardEvent, TrajectoryRecord

# One rung per firing; "ask_human" is skipped when nobody is attached to answer.
LADDER = ("redirect", "switch_technique", "ask_human", "stop")


def _repeat(window: list[TrajectoryRecord], config: GuardConfig) -> tuple[str, str] | None:
    counts = Counter(record.signature for record in window)
    signature, times = counts.most_common(1)[0] if counts else ("", 0)
    if times >= config.repeat_threshold:
        agent = next(r for r in window if r.signature == signature)
        return f"repeat:{signature}", f"{agent.agent}.{agent.action} repeated {times} times"
    return None


def _cycle(window: list[TrajectoryRecord], config: GuardConfig) -> tuple[str, str] | None:
    signatures = [record.signature for record in window]
    for period in (2, 3):
        span = period * config.cycle_repeats
        if len(signatures) < span:
            continue
        tail = signatures[-span:]
        unit = tail[:period]
        if len(set(unit)) == period and all(
            tail[i] == unit[i % period] for i in range(span)
        ):
            names = " → ".join(
                f"{r.agent}.{r.action}" for r in window[-span:][:period]
            )
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


def _plateau(evaluations: list[EvaluationRecord], config: GuardConfig) -> tuple[str, str] | None:
    scored = [e for e in evaluations if e.iteration > 0]
    k = config.plateau_evaluations
    if len(scored) < k:
        return None
    before = [e.strict for e in evaluations if e not in scored[-k:]]
    best_before = max(before) if before else 0.0
    recent_best = max(e.strict for e in scored[-k:])
    if recent_best < best_before + config.min_improvement:
        labels = ",".join(e.label for e in scored[-k:])
        detail = (
            f"no improvement over {best_before:.3f} in the last {k} evaluations ({labels})"
        )
        return f"plateau:{labels}", detail
    return None


def inspect(
    trajectory: list[TrajectoryRecord],
    evaluations: list[EvaluationRecord],
    fired: list[GuardEvent],
    config: GuardConfig,
    human_attached: bool,
    step: int,
) -> GuardEvent | None:
    """The first loop pattern not already fired on, with the next rung of the ladder; or None."""
    window = trajectory[-config.window :]
    already = {event.key for event in fired}
    checks = (
        ("repeat", lambda: _repeat(window, config)),
        ("cycle", lambda: _cycle(window, config)),
        ("failure", lambda: _failure(window, config)),
        ("plateau", lambda: _plateau(evaluations, config)),
    )
    for pattern, check in checks:
        found = check()
        if found is None or found[0] in already:
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
