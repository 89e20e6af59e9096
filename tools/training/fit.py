"""How well a technique fits the task in hand, from the task's measured features.

The Librarian ranks cards by text relevance times this fit, so a card whose method cannot learn
here (no correct answers to sample yet, no teacher, too little data to order or filter), or whose
evidence was measured far from this model's size, ranks below one that can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from postlab.records.outcomes import MeasuredEffect
from postlab.tools.training.recipes import (
    CARD_REFERENCE_PARAMS,
    FULL_FINETUNE_MAX_BYTES,
    TECHNIQUES,
)

# A card outside the accuracy band may still apply later (GRPO once SFT gives correct answers):
# it drops in rank rather than out of it.
OUT_OF_BAND_FIT = 0.25
# Each factor of ten between this model and the nearest size a card's papers measured at costs
# this much fit (1 / (1 + weight × decades)): 135M against 7B is 1.7 decades, fit 0.70.
SIZE_FIT_WEIGHT = 0.25
# Ordering or filtering a training pool needs a pool: below this many rows they have little to do.
MIN_POOL_FOR_DATA_RECIPES = 100
DATA_RECIPES_NEEDING_A_POOL = ("curriculum", "quality")
SMALL_POOL_FIT = 0.5
# Earlier runs on this task count when their model was within this many decades of this one's
# size; their mean validation change per iteration moves the fit by as much, within ±0.5.
LOCAL_SIZE_DECADES = 0.6
LOCAL_EFFECT_LIMIT = 0.5
# How a fit note from this machine's own runs begins (reasons quote those notes).
LOCAL_NOTE = "measured here"


@dataclass(frozen=True)
class TaskFeatures:
    """What the lab has measured about the task and model before choosing a technique."""

    accuracy: float
    model_params: float
    weights_bytes: int
    train_pool: int | None
    teacher: bool


def fit(key: str, features: TaskFeatures, measured_at: list[float]) -> tuple[float, list[str]]:
    """How well technique `key` fits (0..1) and why, given the sizes its papers measured at."""
    recipe = TECHNIQUES[key]
    if recipe.needs_teacher and not features.teacher:
        return 0.0, ["needs a teacher model (--teacher)"]
    if recipe.adapter == "full" and features.weights_bytes >= FULL_FINETUNE_MAX_BYTES:
        return 0.0, ["full fine-tuning of weights this large does not fit"]
    score, notes = 1.0, []
    if not recipe.min_accuracy <= features.accuracy <= recipe.max_accuracy:
        score *= OUT_OF_BAND_FIT
        notes.append(
            f"learns at validation accuracy {recipe.min_accuracy:.2f}–{recipe.max_accuracy:.2f}, "
            f"now {features.accuracy:.2f} (×{OUT_OF_BAND_FIT:g})"
        )
    if recipe.data in DATA_RECIPES_NEEDING_A_POOL and (
        features.train_pool is not None and features.train_pool < MIN_POOL_FOR_DATA_RECIPES
    ):
        score *= SMALL_POOL_FIT
        notes.append(
            f"{features.train_pool} training rows to order or filter (×{SMALL_POOL_FIT:g})"
        )
    sizes = measured_at or [CARD_REFERENCE_PARAMS]
    decades = min(abs(math.log10(size / features.model_params)) for size in sizes)
    size_fit = 1.0 / (1.0 + SIZE_FIT_WEIGHT * decades)
    score *= size_fit
    nearest = min(sizes, key=lambda size: abs(math.log10(size / features.model_params)))
    assumed = "" if measured_at else " (assumed)"
    notes.append(f"evidence measured at {nearest:.3g}{assumed} parameters (×{size_fit:.2f})")
    return round(score, 4), notes


def local_fit(effects: list[MeasuredEffect], model_params: float) -> tuple[float, str] | None:
    """A fit factor from this machine's earlier runs of a technique on the task, and its note."""
    near = [
        e for e in effects if abs(math.log10(e.model_params / model_params)) <= LOCAL_SIZE_DECADES
    ]
    if not near:
        return None
    mean = sum(e.effect for e in near) / len(near)
    factor = 1.0 + max(-LOCAL_EFFECT_LIMIT, min(LOCAL_EFFECT_LIMIT, mean))
    runs = ", ".join(f"run {e.run_id} {e.effect:+.2f} over {e.iterations}" for e in near[-3:])
    note = f"{LOCAL_NOTE}: {runs} iteration(s), validation per iteration (×{factor:.2f})"
    return factor, note
