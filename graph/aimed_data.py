"""Data aimed at a scored iteration's misses: the category (or group of alike misses) that
dominates them, and the recipe that trains on it."""

from __future__ import annotations

from textwrap import shorten
from typing import NamedTuple

from postlab.records.artifacts import DataRecipe
from postlab.records.outcomes import EvaluationRecord
from postlab.records.steps import Plan
from postlab.tools.evaluation.clusters import dominant_cluster
from postlab.tools.training.recipes import TECHNIQUES

# A miss category holding at least this share of the misses changes the data, not only the LR.
DOMINANT_SHARE = 0.5
# Characters of a miss a reason quotes.
CLIPPED_CHARS = 60
# What each aimed recipe trains on, as a reason says it.
RECIPE_WORDS: dict[DataRecipe, str] = {
    "targeted": "data weighted toward those misses",
    "collapsed_kind": "rows giving that kind of question a larger share, its labels equally",
    "unlearned_kind": "rows giving the kinds of question it misses a larger share",
}
# Categories the data can target (a specific skill gap the verifier names), and the recipe that
# aims at each. A lost carry shows as an answer off by a power of ten: the rows nearest the misses
# and those the model gets wrong, repeated (aimed data reached 0.98 on addition_2d's test against
# naive SFT's 0.97). One label for every question of a kind (answer_format's "yes" to all its
# parity questions, a third of the split: no global collapse) is a kind given too few rows to
# learn: it takes 0.6 of them (tools/data/answer_balance.py's KIND_SHARE). Repeating the rows
# nearest its misses instead (at most a quarter more) took validation 0.81 → 0.85 once, whose
# checkpoint scored 0.79 on test against naive SFT's 0.83. Plain "wrong" says nothing about
# which skill is missing, and format or empty outputs are what plain SFT fixes. Wrong answers
# that gather in a few kinds of question (unit_conversion's conversions by 60, 42 of its first
# iteration's 51 misses) are those kinds given too few rows: they take 0.6 of them too.
# Measured (benchmarks/lab_vs_naive.py, sort_list at 6 × 40 steps): aiming the data at
# 'misordered' lists (sort_list's misses: "8" placed after "64" by its first digit, 90% of them)
# went 0.60 → 0.67 → 0.77 → 0.74 → 0.80 → 0.79 on validation where fresh plain rows went 0.60 →
# 0.74 → 0.79 → 0.78 → 0.81 → 0.83 (test 0.83 against 0.86); earlier, oversampling merely
# "wrong" misses, uncapped, lowered validation on sort_list and answer_format in --quick runs.
# A task folder's plain "wrong" misses do name a gap when most of them resemble each other (by
# embedding: tools/evaluation/clusters.py) and the questions near them are right at most half
# as often as the rest (a weak region, not the task itself): the capped targeted rows then aim
# at that group's misses, as they aim at lost carries. On shout, whose questions all look
# alike, aiming at its largest group (55% of the misses) went 0.41 → 0.33 on validation and
# 0.33 on test, exactly as fresh plain rows did (benchmarks/lab_vs_naive.py, 3 × 20 steps).
AIMED_RECIPES: dict[str, DataRecipe] = {
    "off_by_power_of_ten": "targeted",
    "label_collapse": "collapsed_kind",
    "unlearned_kind": "unlearned_kind",
}


def dominant_miss(evaluation: EvaluationRecord) -> tuple[str, float] | None:
    """The error category holding most of an evaluation's misses, when it dominates."""
    misses = {k: v for k, v in evaluation.error_categories.items() if k != "correct"}
    total = sum(misses.values())
    if not total:
        return None
    category, count = max(misses.items(), key=lambda item: item[1])
    share = count / total
    return (category, share) if share >= DOMINANT_SHARE else None


class Aimed(NamedTuple):
    """Data aimed at a dominant miss: the recipe, and the miss as evidence ("62% of its misses
    are 'off_by_power_of_ten'")."""

    recipe: DataRecipe
    evidence: str

    @property
    def words(self) -> str:
        """The data as a reason names it, with its evidence."""
        return f"on {RECIPE_WORDS[self.recipe]} ({self.evidence})"


def aimed_recipe(plan: Plan, evaluation: EvaluationRecord) -> Aimed | None:
    """The data aimed at the dominant miss, when data can aim at it and the plan's technique
    trains on rows."""
    dominant = dominant_miss(evaluation)
    if not dominant or TECHNIQUES[plan.technique].method != "sft":
        return None
    category, share = dominant
    evidence = f"{share:.0%} of its misses are '{category}'"
    cluster = dominant_cluster(evaluation.miss_clusters)
    if category == "wrong" and cluster is not None:
        example = cluster.example
        alike = (
            f"{cluster.share:.0%} of them alike, such as {_clip(example.prompt)!r} → "
            f"{_clip(example.completion)!r}, where it gets {cluster.near_accuracy:.0%} of "
            f"{cluster.near_items} such questions right against {cluster.rest_accuracy:.0%} "
            "of the rest"
        )
        return Aimed("targeted", f"{evidence}, {alike}")
    if category not in AIMED_RECIPES:
        return None
    kinds = evaluation.unlearned_kinds
    if category == "unlearned_kind" and kinds:
        evidence += (
            f", in one kind of question, '{kinds[0]}'"
            if len(kinds) == 1
            else f", in {len(kinds)} kinds of question such as '{kinds[0]}'"
        )
    return Aimed(AIMED_RECIPES[category], evidence)


def _clip(text: str) -> str:
    return shorten(text, CLIPPED_CHARS, placeholder="…")
