"""Rows learned by heart: an SFT stretch that started and ended with its training set memorised.

A stretch on a task folder trains on every row the folder holds, pass after pass. Once its
training loss is near zero the gradients are too, so the schedule's remaining steps barely
move the weights: validation that stays flat through such a stretch is a stall, not the noise
the `hold` rule carries a schedule through. Measured (benchmarks/lab_vs_naive.py, 6 × 40 steps
at 148b605): shout's first stretch ended at training loss 0.001 and validation 0.33, and all
five later stretches held 0.33 at losses of 5e-4 to 1e-4; phrase_edits' held 0.72 four times
after its curriculum recipe's training pass rate reached 1.0.
"""

from __future__ import annotations

from typing import NamedTuple

from postlab.agents.base import dataset_card
from postlab.records.artifacts import DatasetCard
from postlab.records.outcomes import finite_number
from postlab.records.state import LabState
from postlab.records.steps import Plan
from postlab.tools.training.recipes import NEW_ROW_RECIPES, TECHNIQUES, rereads_its_source

# A stretch ending below this training loss (per completion token) knew its rows by heart. The
# demo's addition stretches, on fresh rows that generalise, end at 0.09 to 0.24.
MEMORISED_LOSS = 0.01


class Memorised(NamedTuple):
    """Evidence that a stretch trained on rows its model already knew by heart."""

    rows: int
    before: float
    after: float
    # Of those rows, how many follow a copy rule (tools/data/recombination.py): 0, none to swap.
    rule_rows: int = 0

    def describe(self) -> str:
        """The evidence as a reason says it."""
        return (
            f"its {self.rows} training rows, every row its source holds, were learned by heart: "
            f"the stretch it continued ended at training loss {self.before:.1g} and it ended at "
            f"{self.after:.1g} (below {MEMORISED_LOSS:g})"
        )


def iteration_card(state: LabState, iteration: int) -> DatasetCard | None:
    """The data card an iteration trained on, when it has one."""
    record = next((i for i in state.get("iterations") or [] if i.iteration == iteration), None)
    if record is None or record.dataset is None:
        return None
    return dataset_card(state, record.dataset)


def sft_final_loss(state: LabState, iteration: int) -> float | None:
    """The training loss an SFT iteration's finished run ended at, or None (another method, no
    finished run, no finite loss)."""
    attempts = (r for r in reversed(state.get("runs") or []) if r.iteration == iteration)
    run = next((r for r in attempts if r.result.status == "ok"), None)
    if run is None:
        return None
    recipe = TECHNIQUES.get(run.technique)
    if recipe is None or recipe.method != "sft":
        return None
    return finite_number(run.result.metrics.get("final_loss"))


def _exhausted_loss(state: LabState, iteration: int) -> tuple[DatasetCard, float] | None:
    """The data card and final training loss of an SFT iteration that trained on every row its
    data source holds, or None (a source with rows to spare, another method, no finished run)."""
    loss = sft_final_loss(state, iteration)
    if loss is None:
        return None
    card = iteration_card(state, iteration)
    if card is None or not rereads_its_source(card):
        return None
    return card, loss


def memorised(state: LabState, plan: Plan) -> Memorised | None:
    """Whether a finished SFT stretch started from a model that had learned every row of its
    source by heart and ended the same way; None when it did not (or cannot be told)."""
    if plan.method != "sft" or plan.parent == 0:
        return None
    before = _exhausted_loss(state, plan.parent)
    after = _exhausted_loss(state, plan.iteration)
    if before is None or after is None or max(before[1], after[1]) >= MEMORISED_LOSS:
        return None
    card, loss = after
    rule_rows = int(card.recipe_stats.get("rule_rows") or 0)
    return Memorised(rows=card.final_size, before=before[1], after=loss, rule_rows=rule_rows)


def last_bet(state: LabState, recipe: str, parent: int) -> bool:
    """Whether a stretch on `recipe` from iteration `parent` is the first on rows its folder
    lacks (a teacher's, recombined), after one that learned the folder's own by heart: the one
    thing left to try, so it must beat the best or the run stops, and it is never held within
    noise of the best (agents.best_place.schedule_hold). (New rows taken up for a
    folder too small for its stretches, before any stretch learned it by heart, are no last
    bet: a dip on them is judged like any other.)"""
    if recipe not in NEW_ROW_RECIPES or parent == 0:
        return False
    before = iteration_card(state, parent)
    if before is None or before.recipe in NEW_ROW_RECIPES:
        return False
    exhausted = _exhausted_loss(state, parent)
    return exhausted is not None and exhausted[1] < MEMORISED_LOSS
