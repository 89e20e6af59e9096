"""Which checkpoint takes the best's place: a score within noise of the best on the schedule it
went on with (a hold), a label phase's collapse, and the best such a phase sets aside."""

from __future__ import annotations

from postlab.agents.base import dataset_card
from postlab.records.outcomes import (
    BestModel,
    EvaluationRecord,
    HeldPeak,
    PairedComparison,
    binomial_stderr,
)
from postlab.records.state import LabState
from postlab.records.steps import Plan
from postlab.tools.evaluation.scoring import EvalResult
from postlab.tools.training.recipes import rereads_its_source


def schedule_hold(state: LabState, result: EvalResult) -> HeldPeak | None:
    """The highest score an iteration that continued the best's schedule stays within noise of,
    when it takes the best's place without beating it; None when it does not.

    On one schedule, a validation score within noise of the highest so far is not a stall: the
    later checkpoint has trained on more data, and the schedule can only go on from it.
    Measured: on sort_list (benchmarks/lab_vs_naive.py, 6 × 40 steps) a dip from 0.79 to 0.78
    on 100 items sent the lab back to redo steps 120–160 at half the rate and then to other
    techniques; it used 120 of its 240 steps on the schedule and scored 0.81 on test against
    0.88 for naive SFT, which trained on through the same noise. Both scores come from the same
    items, so where both checkpoints' misses are known noise is judged on the items that changed
    (McNemar's test): five lost and two gained is chance, five lost and none gained is not, and
    one standard error of the peak alone tells neither apart. Scores that count every answer
    equally (a skewed folder's lent validation) weigh items unequally: the standard error
    judges them. A last bet (`Plan.last_bet`) is never held: the run stops after it, so a dip
    held would become the result (phrase_edits' recombined stretch, 0.75 → 0.64 on validation,
    six lost and two gained, was held and scored 0.75 on test against naive SFT's 0.89). Nor is
    a stretch that trained on every row its source holds: on the facts a model knows
    (`Plan.known_only`), or on a folder with fewer clean rows than the stretch reads. It re-read
    the rows the schedule had already read, so the later checkpoint has learned them more by
    heart, not seen more data: on the held-out capitals folder a held 0.24 → 0.21 after four
    passes scored 0.12 on test, the first pass 0.26; on weekdays (196 rows, 320 read a stretch)
    holds carried the best from validation 0.17 down to 0.07, which scored 0.07 on test. A
    stretch that collapsed to one answer is held only in a label phase (`_phase_hold`), and so
    is the first stretch past one that no noise hold keeps.
    """
    plan, best = state.get("plan"), state.get("best")
    if plan is None or best is None or best.iteration == 0:
        return None
    if result.collapse:
        return _phase_hold(state, plan, best, result)
    if held := _noise_hold(state, plan, best, result):
        return held
    # Above the best it went on from, a stretch takes its place outright (the best a phase set
    # aside, if any, stays set aside while it is higher).
    return _phase_hold(state, plan, best, result) if result.strict <= best.strict else None


def _noise_hold(
    state: LabState, plan: Plan, best: BestModel, result: EvalResult
) -> HeldPeak | None:
    """The peak a stretch that did not collapse stays within noise of; None when it does not,
    or when it is a stretch whose dip is no noise (`schedule_hold`)."""
    card = dataset_card(state, plan.dataset_path)
    if plan.last_bet or plan.known_only or (card is not None and rereads_its_source(card)):
        return None
    if not plan.continues(best.iteration):
        return None
    records = [e for e in state.get("evaluations") or [] if e.iteration > 0]
    peak = max(records, key=lambda record: record.strict, default=None)
    if peak is None or peak.strict < best.strict:
        label, strict, missed = best.label, best.strict, None
    else:
        label, strict, missed = peak.label, peak.strict, peak.missed
    if result.strict > strict:
        return None  # above every score so far: a new best outright, nothing held
    stderr = round(binomial_stderr(strict, result.n), 4)
    paired = (
        missed is not None
        and not (peak.balanced_by_label or result.balanced_by_label)
        and set(missed) <= set(result.prompts)
    )
    if not paired:
        if result.strict < strict - stderr:
            return None
        return HeldPeak(label=label, strict=strict, stderr=stderr)
    change = PairedComparison.of(missed, result.missed_prompts, result.n)
    if change.verdict == "behind":
        return None
    return HeldPeak(
        label=label, strict=strict, stderr=stderr, broken=change.lost, fixed=change.gained
    )


def phase_parent(state: LabState, plan: Plan) -> EvaluationRecord | None:
    """The collapsed iteration whose schedule `plan` goes on with while a label set is learned
    (plain SFT on training answers that over-represent none); None when it is no such stretch."""
    if plan.method != "sft" or plan.data_recipe == "balanced" or state.get("answer_shift"):
        return None
    if plan.move not in ("continue", "raise_lr"):
        return None
    evaluations = state.get("evaluations") or []
    parent = next((e for e in evaluations if e.iteration == plan.parent), None)
    if parent is None or not parent.collapse or not plan.continues(parent.iteration):
        return None
    return parent


def went_on_with(parent: EvaluationRecord) -> str:
    """A label phase's stretch in words: the collapsed schedule it went on with."""
    return (
        f"it went on with iteration {parent.iteration}'s schedule, which gave one answer to "
        f"{parent.collapse:.0%} of validation"
    )


def _phase_hold(
    state: LabState, plan: Plan, best: BestModel, result: EvalResult
) -> HeldPeak | None:
    """The peak a stretch of a label phase takes the best's place from; None when it is no such
    stretch, the schedule ends with it, or it beats every score so far.

    A model fine-tuned on a balanced label set answers one label to everything first, and which
    label, and how often, swings from stretch to stretch until it learns the mapping: its
    validation score measures that swing, not the schedule. Only the collapsed model itself can
    go on with the schedule. Measured on the held-out choice_category folder at seed 1: the
    first stretch answered one letter to 80% of validation (0.35), the next to all of it (0.15);
    sent back to the 0.35 checkpoint to rebalance and switch, the lab never passed 0.35 and
    scored 0.17 on test where 240 plain steps reached 0.49. Going on from the 0.15 checkpoint,
    the next stretch reached 0.87 and the run 0.93 on test. At seed 2 (0.29 → 0.25, one letter
    in 100% then 87%) it went on to 0.98 against naive SFT's 0.89; on odd_one_out, a folder
    written after this rule, two held collapses led to 0.83 on test against 0.58
    (benchmarks/lab_vs_naive.py's arms at the full budget); at its seed 1 the phase lasted
    four stretches, the first stretch past it scored 0.27 against the set-aside 0.35 and was not
    held, and the lab ended at 0.32 against 0.83. That stretch is still the phase: the model has
    begun to tell the labels apart, not learned which goes where, and only it can go on with the
    schedule. Held, it went on to the schedule's end and the set-aside best scored 0.29 (its
    model never learned the mapping in 240 steps, nor with no climb); on compare_numbers at
    seed 1, the one other measured run the hold changes, the stretch past a two-label collapse
    (0.60 → 0.40) kept the schedule at 6e-5 where a halved rate and a rebalance had followed:
    0.64 on test against 0.55 (naive SFT 0.58). Over seeds 0–3 the lab and naive SFT are level
    on odd_one_out (0.72, 0.71).
    """
    parent = phase_parent(state, plan)
    if parent is None or parent.iteration != best.iteration or not plan.schedule_unfinished:
        return None
    peak = best.set_aside or best
    if result.strict > peak.strict:
        return None  # above every score so far: a new best outright
    now = (
        f"now {result.collapse:.0%}"
        if result.collapse
        else "now no answer to most of it, the first stretch past the collapse"
    )
    phase = f"{went_on_with(parent)}; {now}"
    stderr = round(binomial_stderr(peak.strict, result.n), 4)
    return HeldPeak(label=peak.label, strict=peak.strict, stderr=stderr, phase=phase)


def set_aside(best: BestModel | None, held: HeldPeak | None, strict: float) -> BestModel | None:
    """The best a new best keeps set aside: the one a label phase's hold takes the place of, or
    the one its predecessor kept, while this score does not pass it."""
    aside = best.set_aside if best else None
    if held is not None and held.phase and aside is None:
        aside = best
    return aside if aside is not None and strict <= aside.strict else None
