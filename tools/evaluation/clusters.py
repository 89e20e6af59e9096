"""Groups of similar misses, over embedding vectors, for answers no verifier can categorise."""

from __future__ import annotations

import numpy as np

# A miss joins a group when its embedding is at least this close (cosine) to one of its members.
# Measured with memory's MiniLM on "prompt → answer" texts: one question asked of four countries
# pairs at 0.48–0.69; unrelated requests at 0.2 or less.
CLUSTER_COSINE = 0.45
# Fewer free-form misses than this say nothing about a pattern.
MIN_MISSES_TO_CLUSTER = 4


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
