"""How each technique trains, when it applies, and how a paper's numbers scale to this model.

One home for the rules every chooser follows (the playbook, the LLM router, the agents' tools):
which method and data recipe a technique uses, the validation-accuracy band where it has a
signal to learn from, and how a learning rate measured on a large model carries to a small one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from postlab.records.artifacts import DataRecipe, DatasetCard, Method

# The model size a card's learning rate is taken to be measured at when the card does not say
# (LLaMA-7B-class models dominate the post-training literature we summarise).
CARD_REFERENCE_PARAMS = 7e9
# The usual practice of raising the learning rate as models shrink, written as lr ∝ params^-1/2
# (135M takes about 7x a 7B model's rate); capped so a tiny model is never pushed past stability.
LR_SIZE_EXPONENT = 0.5
MAX_LR_FACTOR = 8.0
# Bounds no scaled value may leave, by adapter: beyond them training diverges or stalls.
# Full fine-tuning of SmolLM2-135M, 20 steps of 8 (benchmarks/lr_sweep.py, validation of 60):
# sort_list 3e-5 → 0.40, 6e-5 → 0.53, 1.2e-4 → 0.45; answer_format 3e-5 → 0.55, 6e-5 → 0.55,
# 1.2e-4 → 0.47; addition_3d 5e-5 → 0.33, 3e-4 → 0.00. The size rule alone would give 1.4e-4.
# The bound is the largest rate no worse than a smaller one on every swept task: at 8e-5 the lab
# ran answer_format to 0.55 and 0.53 on validation where plain SFT at 5e-5 reached 0.67
# (benchmarks/lab_vs_naive.py --quick). At the full benchmark's 240 steps the higher rate bought
# nothing either: plain SFT on sort_list at 1e-4 scored 0.81 on validation (100 items) against
# 0.82 at 5e-5, and answer_format at 1e-4 0.81, level with the lab's runs at or under 6e-5.
LR_BOUNDS = {"full": (1e-6, 6e-5), "lora": (1e-5, 1e-3)}
# A model that has not fit rows its schedule reads again after a stretch (its training loss
# still at least UNDERFIT_LOSS; which rows count: graph.rates) learns too slowly at that
# rate: on a schedule of at least UNDERFIT_SCHEDULE_STEPS full fine-tuning may then climb to
# UNDERFIT_LR_CEILING. Plain SFT for 240 steps on task folders
# at 1.5e-4 against 5e-5 (test): digit sums 0.49 against 0.32 (its stretches ended at training
# loss 0.81, 0.79, 0.51 at 6e-5), object colours 0.39 and 0.39, word_problems_500 0.38 and 0.38,
# word_category 0.97 and 0.96, phrase_edits 0.83 and 0.89 (two items of 36; its rows were
# learned by heart after one stretch, so it never climbs); the bound above was measured on 20-step
# runs. On generated tasks (rows new every stretch, so the climb never applies): addition_3d 0.91
# and 0.90, sort_list 0.87 and 0.88, unit_conversion 0.61 and 0.56. A label stretch that gave one
# answer to most of validation has not fit its rows either, however low its loss (graph.rates):
# plain SFT on compare_numbers (yes or no) at seed 1, 0.58 at 5e-5 and 0.98 at 1.5e-4; at seed 2,
# 0.63 and 0.84; odd_one_out (four letters) at seed 1, 0.83 and 0.97; compare_numbers with 3,000
# rows, more than a schedule reads, at seed 1, 0.64 and 0.96. So a label task folder opens at
# the ceiling (graph.rates.opening_climb).
UNDERFIT_LOSS = 0.5
# A collapsed stretch under this loss has fit its rows all the same: a prior-only model's is the
# answers' entropy over the reply's three tokens, 0.23 for two answers evenly split.
PRIOR_LOSS_FLOOR = 0.1
UNDERFIT_SCHEDULE_STEPS = 120
# LoRA has no such ceiling: it was never measured past its bound.
UNDERFIT_LR_CEILING = {"full": 1.5e-4}
# Full fine-tuning fits comfortably below this weight size; above it LoRA is the default.
FULL_FINETUNE_MAX_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class TechniqueRecipe:
    """What running a technique means: trainer method, data recipe and where it applies."""

    method: Method
    data: DataRecipe
    default_lr: float
    # The validation accuracy band where the technique has a signal: sampling-based techniques
    # need some correct answers (and some wrong ones) to learn from.
    min_accuracy: float = 0.0
    max_accuracy: float = 1.0
    adapter: Literal["full", "lora"] | None = None
    # Preference and RL steps see each prompt with several completions: fewer steps go further.
    steps_factor: float = 1.0
    # Runs only when the user names a teacher model (--teacher).
    needs_teacher: bool = False


TECHNIQUES: dict[str, TechniqueRecipe] = {
    "sft_full": TechniqueRecipe("sft", "plain", 2e-5, adapter="full"),
    "sft_lora": TechniqueRecipe("sft", "plain", 2e-4, adapter="lora"),
    "curriculum": TechniqueRecipe("sft", "curriculum", 2e-5),
    "data_quality": TechniqueRecipe("sft", "quality", 2e-5),
    "rejection_sampling": TechniqueRecipe("sft", "rft", 2e-5, min_accuracy=0.05),
    "synthetic_teacher": TechniqueRecipe("sft", "synthetic", 2e-5, needs_teacher=True),
    "dpo": TechniqueRecipe("dpo", "preference", 5e-7, min_accuracy=0.05, max_accuracy=0.95),
    "grpo": TechniqueRecipe(
        "grpo", "grpo", 1e-6, min_accuracy=0.1, max_accuracy=0.95, steps_factor=0.5
    ),
}
# Data recipes each trainer method can learn from (a router may change a plan's recipe within).
RECIPES_BY_METHOD: dict[str, tuple[str, ...]] = {
    "sft": (
        "plain",
        "quality",
        "curriculum",
        "targeted",
        "rft",
        "synthetic",
        "balanced",
        "collapsed_kind",
        "unlearned_kind",
        "recombined",
    ),
    "dpo": ("preference",),
    "orpo": ("preference",),
    "grpo": ("grpo",),
}
# Recipes that bring rows a task folder does not hold (a teacher's, recombined ones), taken up
# once the folder's own were learned by heart.
NEW_ROW_RECIPES = ("synthetic", "recombined")


def rereads_its_source(card: DatasetCard) -> bool:
    """Whether a stretch on this card trained on no row beyond those its source holds: the
    source gave all it had, and the recipe brought no rows of its own."""
    return card.source_exhausted and card.recipe not in NEW_ROW_RECIPES


# Short names users type in --techniques.
ALIASES = {
    "sft": "sft_full",
    "lora": "sft_lora",
    "rft": "rejection_sampling",
    "star": "rejection_sampling",
    "teacher": "synthetic_teacher",
    "self_instruct": "synthetic_teacher",
}


def resolve_technique(name: str) -> str:
    """A technique key from a key or an alias; ValueError names the known ones."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in TECHNIQUES:
        known = ", ".join(sorted(set(TECHNIQUES) | set(ALIASES)))
        raise ValueError(f"unknown technique {name!r}; known: {known}")
    return key


def applies(key: str, accuracy: float) -> str | None:
    """Why a technique cannot learn at this validation accuracy, or None when it can."""
    recipe = TECHNIQUES[key]
    if accuracy < recipe.min_accuracy:
        return (
            f"needs validation accuracy ≥ {recipe.min_accuracy:.2f} to sample correct answers "
            f"(now {accuracy:.2f})"
        )
    if accuracy > recipe.max_accuracy:
        return f"needs wrong answers to learn from (validation accuracy {accuracy:.2f})"
    return None


def model_parameters(checkpoint: str | Path) -> float:
    """Parameter count of a checkpoint, from its weight files (fp32) or its config."""
    folder = Path(checkpoint)
    weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    if weights:
        return weights / 4
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return CARD_REFERENCE_PARAMS
    hidden, layers = config.get("hidden_size", 4096), config.get("num_hidden_layers", 32)
    return 12 * layers * hidden**2


def weights_bytes(checkpoint: str | Path) -> int:
    """Size of a checkpoint's weight files, a proxy for whether full fine-tuning fits."""
    folder = Path(checkpoint)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors")) or sum(
        f.stat().st_size for f in folder.glob("*.bin")
    )


def adapter_for(key: str, checkpoint: str | Path) -> Literal["full", "lora"]:
    """The technique's adapter, or full fine-tuning when the weights fit, else LoRA."""
    fixed = TECHNIQUES[key].adapter
    if fixed is not None:
        return fixed
    return "full" if weights_bytes(checkpoint) < FULL_FINETUNE_MAX_BYTES else "lora"


def size_factor(params: float, measured_at: float = CARD_REFERENCE_PARAMS) -> float:
    """How much larger a learning rate this model takes than the model a card measured."""
    return min(MAX_LR_FACTOR, (measured_at / max(params, 1.0)) ** LR_SIZE_EXPONENT)


def _size(params: float) -> str:
    if params >= 1e9:
        return f"{params / 1e9:.3g}B"
    return f"{params / 1e6:.3g}M" if params >= 1e6 else f"{params:.0f}"


def scale_learning_rate(
    card_lr: float, params: float, measured_at: float | None = None
) -> tuple[float, str]:
    """A paper's learning rate carried to this model (unbounded), and the rule, in words."""
    source = measured_at or CARD_REFERENCE_PARAMS
    factor = size_factor(params, source)
    measured = "measured at" if measured_at else "assumed measured at"
    rule = f"{card_lr:g} {measured} {_size(source)} × {factor:.2g} → {card_lr * factor:.3g}"
    return card_lr * factor, rule


def pooled_learning_rate(
    reported: list[tuple[float, float | None]], params: float, adapter: str
) -> tuple[float, str]:
    """One learning rate for this model from every (rate, model size) the papers report.

    Each is scaled from the size it was measured at (lr ∝ params^-1/2, at most ×8); papers
    disagree by several times for one technique (Tulu 3's 5e-6 and Llama 2's 2e-5 at 7-8B), so
    the rates are pooled by their geometric mean rather than trusting the first one; the result
    stays within the adapter's bounds.
    """
    scaled = [scale_learning_rate(lr, params, at) for lr, at in reported]
    pooled = math.exp(sum(math.log(value) for value, _ in scaled) / len(scaled))
    low, high = LR_BOUNDS[adapter]
    bounded = float(f"{min(high, max(low, pooled)):.3g}")
    parts = "; ".join(rule for _, rule in scaled)
    pooling = f"geometric mean {pooled:.3g}" if len(scaled) > 1 else f"{pooled:.3g}"
    rule = (
        f"{parts} (lr ∝ params^-{LR_SIZE_EXPONENT} for {_size(params)} parameters); {pooling}"
        f"{'' if bounded == float(f'{pooled:.3g}') else f', bounded to {bounded:g}'} "
        f"within [{low:g}, {high:g}] for {adapter}"
    )
    return bounded, rule


def underfit_ceiling(adapter: str, schedule_steps: int) -> float | None:
    """The peak rate a continuation of a stretch that has not fit its rows may climb to, on a
    schedule of `schedule_steps`; None where the schedule is too short for the measured ceiling
    or the adapter has none."""
    if schedule_steps < UNDERFIT_SCHEDULE_STEPS:
        return None
    return UNDERFIT_LR_CEILING.get(adapter)


def rate_range(adapter: str, planned: float | None = None) -> tuple[float, float]:
    """The peak rates a chooser (a routing model, an agent's tool) may set for `adapter`: its
    bounds, stretched to the plan's own rate where the under-fit climb put it past them."""
    low, high = LR_BOUNDS[adapter]
    ceiling = UNDERFIT_LR_CEILING.get(adapter)
    if planned is not None and ceiling is not None and high < planned <= ceiling:
        high = planned
    return low, high


def steps_for(key: str, base_steps: int) -> int:
    """Optimiser steps for one iteration of the technique from the run's per-iteration steps."""
    return max(1, math.ceil(base_steps * TECHNIQUES[key].steps_factor))


# A stretch on a recall task (graph.known_rows) reads its rows once, so that validation is
# read before the facts are learned by heart and answered in place of the ones the model knew.
# Measured on the held-out capitals folder (benchmarks/known_rows.py; test asks 50 countries
# training never names): full SFT at 6e-5 on the 101 rows whose answers the base model gives
# scored 0.22 on test after 10 steps of 8 (about one pass) and 0.12 after 40; on all 132 rows
# 0.26 after 10 steps and 0.04 after 240.
def one_pass_steps(rows: int, batch_size: int) -> int:
    """Steps that read `rows` once at `batch_size`: a recall task's stretch."""
    return max(1, math.ceil(rows / batch_size))
