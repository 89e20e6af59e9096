"""Groups of similar misses, over embedding vectors, for answers no verifier can categorise."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from postlab.records.artifacts import FailureSample
from postlab.records.outcomes import MissCluster
from postlab.tools.evaluation.misses import COLLAPSE_MIN_ITEMS, unlearned_kinds

# A miss joins a group when its embedding is at least this close (cosine) to one of its members.
# Measured with memory's MiniLM on "prompt → answer" texts: one question asked of four countries
# pairs at 0.48–0.69; unrelated requests at 0.2 or less.
CLUSTER_COSINE = 0.45
# Fewer free-form misses than this say nothing about a pattern.
MIN_MISSES_TO_CLUSTER = 4
# A validation question lies in a group's region when its prompt is at least this close (cosine)
# to the mean direction of the group's prompts. Measured with memory's MiniLM: on phrase_edits
# the missed kind's questions lie at 0.72–0.85 and the other kinds' (about the same phrases) at
# 0.31–0.50, where the nearest single member is 0.70–0.78 for both; a question asked of other
# countries at 0.59–0.76 from four missed "capital city" questions, unrelated ones at 0.21 or less.
REGION_COSINE = 0.55
# Groups a record keeps (the largest): enough to show the patterns, not every singleton.
KEPT_CLUSTERS = 3
# A group holding at least this share of the free-form misses is the pattern data can aim at:
# the rest are scattered failures that no one set of rows is near.
DOMINANT_CLUSTER_SHARE = 0.5


def cluster_unit_vectors(unit: np.ndarray, threshold: float = CLUSTER_COSINE) -> list[list[int]]:
    """Greedy single-link clustering of unit row vectors; clusters largest first, in order.

    Each vector joins the group holding its closest earlier vector when that one is
    `threshold`-close, or starts a group: deterministic, and enough for the tens of misses one
    validation split holds.
    """
    group_of: list[int] = []
    members: list[list[int]] = []
    for index in range(len(unit)):
        if index:
            similarity = unit[:index] @ unit[index]
            closest = int(np.argmax(similarity))
            if similarity[closest] >= threshold:
                group_of.append(group_of[closest])
                members[group_of[closest]].append(index)
                continue
        group_of.append(len(members))
        members.append([index])
    return sorted(members, key=lambda group: (-len(group), group[0]))


class Region(NamedTuple):
    """The split's questions near a group of misses, and how often the model gets them right."""

    items: int
    accuracy: float
    rest_accuracy: float
    unlearned: bool


_NEAR = "near"


def near_region(
    prompts: np.ndarray,
    members: np.ndarray,
    correct: list[bool],
    own: list[bool],
    threshold: float = REGION_COSINE,
) -> Region:
    """Which of the split's questions (unit vectors of their prompts) lie near a group's members'
    prompts, and whether the model is weak there: right at most half as often as on the rest,
    by the rule that names unlearned kinds of numbered questions (`unlearned_kinds`).

    Near is within REGION_COSINE of the members' mean direction; the closest member alone
    would not do, since questions of other kinds about the same phrase share its words. A
    region must also hold at least COLLAPSE_MIN_ITEMS questions besides the group's own misses
    (`own`): one made of those misses alone is weak by construction, not by evidence (on shout
    the first stretch's six alike misses were their own region, 0% right).
    """
    centre = members.mean(axis=0)
    centre /= np.linalg.norm(centre)
    near = prompts @ centre >= threshold
    kinds = [_NEAR if close else str(index) for index, close in enumerate(near)]
    inside = [right for right, close in zip(correct, near, strict=True) if close]
    outside = [right for right, close in zip(correct, near, strict=True) if not close]
    others = sum(close and not mine for close, mine in zip(near, own, strict=True))
    return Region(
        items=len(inside),
        accuracy=round(sum(inside) / len(inside), 3) if inside else 0.0,
        rest_accuracy=round(sum(outside) / len(outside), 3) if outside else 0.0,
        unlearned=others >= COLLAPSE_MIN_ITEMS and _NEAR in unlearned_kinds(kinds, correct),
    )


def dominant_cluster(clusters: list[MissCluster]) -> MissCluster | None:
    """The group of free-form misses that holds most of them, where the model is weak."""
    top = clusters[0] if clusters else None
    if top is None or top.share < DOMINANT_CLUSTER_SHARE or not top.unlearned:
        return None
    return top


def group_misses(
    embed: Callable[[list[str]], np.ndarray],
    misses: list[FailureSample],
    prompts: list[str],
    correct: list[bool],
) -> list[MissCluster]:
    """Free-form misses grouped by meaning ("prompt → answer" embedded by `embed`, as unit
    vectors), largest first, each with how the model does on the split's questions near it
    (`prompts`, right where `correct`)."""
    if len(misses) < MIN_MISSES_TO_CLUSTER:
        return []
    unit = embed([f"{m.prompt} → {m.completion}" for m in misses])
    groups = [group for group in cluster_unit_vectors(unit)[:KEPT_CLUSTERS] if len(group) > 1]
    if not groups:
        return []
    # Each miss is one of the split's items: its prompt's vector is the split's.
    split = embed(prompts)
    row = {prompt: index for index, prompt in enumerate(prompts)}
    asked = split[[row[m.prompt] for m in misses]]
    clusters = []
    for group in groups:
        mine = {misses[i].prompt for i in group}
        region = near_region(split, asked[group], correct, [p in mine for p in prompts])
        clusters.append(
            MissCluster(
                size=len(group),
                share=round(len(group) / len(misses), 3),
                example=misses[group[0]],
                prompts=[misses[i].prompt for i in group],
                near_items=region.items,
                near_accuracy=region.accuracy,
                rest_accuracy=region.rest_accuracy,
                unlearned=region.unlearned,
            )
        )
    return clusters
