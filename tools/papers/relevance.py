"""How well a paper fits a goal: term overlap, influence bonus, and the technique it describes."""

from __future__ import annotations

import math
import re
from typing import Protocol

from postlab.tools.papers.corpus import (
    TechniqueKey,
)

INFLUENCE_WEIGHT = 0.25


# Papers this influential (influential citations) get the full influence bonus.
INFLUENCE_SCALE = 1000


_WORD = re.compile(r"[a-z0-9]+")


# fmt: off
_STOP = frozenset({
    "a", "an", "the", "of", "for", "and", "or", "in", "on", "to", "with", "by", "via", "is", "are",
    "be", "we", "our", "from", "as", "at", "this", "that", "using", "model", "models", "language",
    "large", "llm", "llms", "paper", "approach", "method", "methods",
})


# fmt: on
# Most specific first: a DPO paper also says "fine-tuning", a QLoRA paper also says "LoRA".
# fmt: off
_HINTS: list[tuple[str, tuple[str, ...]]] = [
    ("grpo", ("group relative policy", "grpo", "verifiable reward", "rlvr", "r1-zero",
              "reinforcement learning", "reinforce", "policy optimization", "ppo")),
    ("dpo", ("direct preference", "preference optimization", "dpo", "preference pair",
             "kto", "orpo", "simpo", "ipo")),
    ("rejection_sampling", ("rejection sampling", "best-of-n", "self-taught reason", "star",
                            "expert iteration", "rest", "rft", "self-training")),
    ("curriculum", ("curriculum", "easy-to-hard", "easy to hard")),
    ("synthetic_teacher", ("self-instruct", "synthetic data", "teacher model",
                           "self-generated instruction")),
    ("sft_lora", ("lora", "low-rank adaptation", "qlora", "parameter-efficient", "adapter")),
    ("data_quality", ("data quality", "data selection", "deduplicat", "filtering", "less is more",
                      "high-quality data", "contamination", "data pruning")),
    ("sft_full", ("instruction tuning", "instruction-tuning", "supervised fine-tuning",
                  "fine-tuning", "finetuning", "instruction following", "distillation")),
]



class TitledText(Protocol):
    """Anything with a title and a summary: a corpus record or an online paper."""

    title: str
    summary: str


def terms(text: str) -> set[str]:
    words = (w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1)
    # A crude stem so "preferences"/"preference" and "rewards"/"reward" meet.
    return {w[:-1] if len(w) > 4 and w.endswith("s") else w for w in words}


def relevance(goal: str, title: str, summary: str) -> float:
    """Share of the goal's terms found in the paper, title hits counting double (0..1)."""
    wanted = terms(goal)
    if not wanted:
        return 0.0
    in_title, in_text = terms(title), terms(summary)
    hits = sum(2 * (t in in_title) + (t in in_text) for t in wanted)
    return hits / (3 * len(wanted))


def influence_bonus(count: int | None) -> float:
    if not count:
        return 0.0
    return INFLUENCE_WEIGHT * min(1.0, math.log1p(count) / math.log1p(INFLUENCE_SCALE))


def query_technique(query: str) -> TechniqueKey | None:
    """The technique a query names outright ("GRPO for small models" → grpo), or None."""
    text = query.lower()
    for key, patterns in _HINTS:
        if any(re.search(rf"\b{re.escape(p)}", text) for p in patterns):
            return key  # type: ignore[return-value]
    return None


def technique_hint(paper: TitledText) -> TechniqueKey | None:
    """The technique key a paper's title and summary point to, or None."""
    title, text = paper.title.lower(), f"{paper.title} {paper.summary}".lower()
    best: tuple[int, TechniqueKey | None] = (0, None)
    for key, patterns in _HINTS:
        hits = sum(
            2 * bool(re.search(rf"\b{re.escape(p)}", title))
            + bool(re.search(rf"\b{re.escape(p)}", text))
            for p in patterns
        )
        if hits > best[0]:
            best = (hits, key)  # type: ignore[assignment]
    return best[1]
