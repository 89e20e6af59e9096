"""The peak learning rate the next stretch of a schedule takes, from what the last one showed.

A stretch that has not fit the rows its schedule reads again climbs to the under-fit ceiling
(tools/training/recipes.py); otherwise the schedule anneals the rate as it is, however large the
gain. A label task folder's schedule opens at that ceiling.

A large gain does not climb: a 1.5× raise of the peak (within the adapter's bound) after a
validation gain of 0.10 or more, paired at the full budget against the same runs without it,
scored addition_3d 0.85 and 0.89 against 0.90 and 0.87 (seeds 0, 1) and sort_list 0.87 and
0.87 against 0.86 and 0.87: no gain to pay for a rule (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import NamedTuple

from postlab.graph.memorised import sft_final_loss
from postlab.graph.number_rows import rows_short_of
from postlab.records.hyper import Hyper
from postlab.records.state import LabState
from postlab.records.steps import Plan
from postlab.tools.training.recipes import (
    NEW_ROW_RECIPES,
    PRIOR_LOSS_FLOOR,
    UNDERFIT_LOSS,
    underfit_ceiling,
)


class Climb(NamedTuple):
    """A higher peak rate for the rest of a schedule, and why, as a reason says it."""

    rate: float
    why: str


def _climb(state: LabState, plan: Plan, collapse: float = 0.0) -> Climb | None:
    """The higher peak rate the rest of `plan`'s schedule takes because its stretch did not fit
    its rows (tools/training/recipes.py's under-fit rule): its training loss ended high, or it
    gave one answer to `collapse` of validation (a share; 0 where it did not) at a loss no lower
    than a prior-only model's; None otherwise.
    Only mid-schedule (a schedule started afresh may be too short for the ceiling), only on rows
    the schedule reads again, and never on a rate halved after a stall or a collapse."""
    if not plan.schedule_unfinished or plan.lr_halved or not _rereads_rows(state, plan):
        return None
    loss = sft_final_loss(state, plan.iteration)
    ceiling = _ceiling_above(plan)
    if loss is None or ceiling is None:
        return None
    if loss >= UNDERFIT_LOSS:
        why = f"its training loss ended at {loss:.2f} (at least {UNDERFIT_LOSS:g}"
    elif collapse and loss >= PRIOR_LOSS_FLOOR:
        # A model that knows only its answers' prior loses that prior's entropy on the answer
        # token alone, averaged over the reply's three (answer, end of turn, newline): 0.23 for
        # yes or no, 0.46 for four letters, under UNDERFIT_LOSS however little it has learned.
        why = (
            f"one answer to {collapse:.0%} of validation at training loss {loss:.2f} (the "
            "loss of its answers' prior"
        )
    else:
        return None
    why += (
        ": it has not fit the rows its schedule reads again), so its schedule's peak is raised "
        f"to {ceiling:g}"
    )
    return Climb(ceiling, why)


def opening_climb(state: LabState, plan: Plan) -> Climb | None:
    """The under-fit ceiling a label task folder's opening schedule starts at
    (tools/training/recipes.py); None otherwise.

    A model learning a small label set answers its prior first and only a high enough rate
    takes it past that plateau; a first stretch at the cards' rate spends a sixth of the run in
    it and climbs too late. Measured (benchmarks/lab_vs_naive.py's lab arm at the full budget,
    climbing from its second stretch): compare_numbers' prior held through all 240 steps at
    seeds 2 and 3 (0.60, 0.59 on test) and odd_one_out's at seed 1 (0.30), where plain SFT at
    the ceiling from its first step scored 0.84 (compare_numbers, seed 2) and 0.97
    (odd_one_out, seed 1; benchmarks/lr_sweep.py). Opening there, the lab scored 0.50, 0.99,
    0.88 and 0.74 on compare_numbers (seeds 0–3; 0.98 and 0.79 before at seeds 0 and 1), 0.89
    and 0.96 on odd_one_out (seeds 0, 1; 0.64 before at seed 0), against naive SFT's 0.81,
    0.55, 0.63, 0.66, 0.58 and 0.83. The phase's length is a bet the rate does not always win:
    at seed 0 of compare_numbers the prior held all 240 steps at the ceiling, in the lab and in
    plain SFT alike (0.57). Rows enough for the whole schedule do not shorten the phase: on
    compare_numbers with 3,000 rows (a schedule reads 1,920) at seed 1 plain SFT scored 0.64 at
    5e-5 and 0.96 at the ceiling; the lab scored 0.65 at the cards' rate and 0.63 opening at the
    ceiling (one answer to all for three and five stretches). On small folders of facts
    (object_colors, continents: learned by heart in 80 to 120 steps at either rate), weekdays and
    choice_category's seed 3 it moved test by one or two items, lower each time. Not on rows a
    recipe makes (not measured), nor on the bundled label task, multiple_choice_arith, where
    the ceiling changed nothing (0.23 on test at either rate)."""
    if plan.method != "sft" or plan.known_only or state.get("constant_answer") is None:
        return None
    if not _on_folder_rows(state, plan) or (ceiling := _ceiling_above(plan)) is None:
        return None
    why = (
        f"its answers are a small label set, so it opens at the under-fit ceiling {ceiling:g} "
        "(a label set is learned past its prior at that rate, not at the cards')"
    )
    return Climb(ceiling, why)


def _ceiling_above(plan: Plan) -> float | None:
    """The under-fit ceiling `plan`'s schedule may run at: long enough for the measured
    ceiling, and above the plan's own rate; None otherwise."""
    ceiling = underfit_ceiling(plan.hyper.adapter, plan.schedule_steps or 0)
    return ceiling if ceiling is not None and ceiling > plan.hyper.learning_rate else None


def _on_folder_rows(state: LabState, plan: Plan) -> bool:
    """Whether `plan` trains on a task folder's own rows, not on rows a recipe makes."""
    return state.get("folder_survey") is not None and plan.data_recipe not in NEW_ROW_RECIPES


def _rereads_rows(state: LabState, plan: Plan) -> bool:
    """Whether `plan`'s schedule reads the same rows again: a task folder holding fewer rows
    than the schedule reads, on a recipe that makes none of its own. (On new rows every stretch,
    a stretch's loss is on rows it never saw and says nothing of fit: climbing on them took
    word_problems_500's validation to 0.46 where it reached 0.60.)"""
    if not _on_folder_rows(state, plan):
        return False
    return rows_short_of(state["folder_survey"].rows, plan) is not None


def climbed(state: LabState, plan: Plan, collapse: float = 0.0) -> tuple[Hyper, str]:
    """`plan`'s settings for the rest of its schedule, at the under-fit ceiling where the rule
    applies (`collapse`: the share of validation its stretch gave one answer), and the words a
    reason adds for it ("" where it does not)."""
    climb = _climb(state, plan, collapse)
    if climb is None:
        return plan.hyper, ""
    return plan.hyper.with_changes(learning_rate=climb.rate), f", {climb.why}"
