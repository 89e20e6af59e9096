"""Rows made with the current model: its verified answers (RFT), preference pairs, an order.

Each builder takes cleaned training examples and returns dataset rows plus what it counted, for
`build_training_set(rows_from=...)`. Sampling uses the checkpoint the iteration starts from.
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postlab.tools.data.training_sets import example_row
from postlab.tools.evaluation.generation import completions_from
from postlab.tools.tasks.catalog import Example, Task

Rows = tuple[list[dict[str, Any]], dict[str, Any]]
# Samples drawn per prompt for RFT and preference pairs, and their temperature: enough spread
# to find both right and wrong answers on a task the model half knows.
SAMPLES_PER_PROMPT = 4
TEMPERATURE = 0.8
# Completions kept per prompt in RFT: two distinct correct answers are enough variety.
RFT_KEEP_PER_PROMPT = 2
# Prompts whose word sets overlap above this, or whose embeddings are at least this close,
# are near-copies for the quality filter (embeddings only for free text: templated prompts
# sit close in meaning whatever their numbers).
NEAR_COPY = 0.9
NEAR_COPY_COSINE = 0.97
# Answers longer than this many times the median (plus a little) are outliers: truncated
# pastes, whole documents in an answer column.
LENGTH_OUTLIER = 8
_WORD = re.compile(r"\w+")


@dataclass
class Sampled:
    """A prompt with the model's sampled completions and which of them the verifier accepts."""

    example: Example
    completions: list[str]
    correct: list[bool]

    def answers(self, correct: bool) -> list[str]:
        """The non-empty completions the verifier accepted (or rejected), stripped, in order."""
        pairs = zip(self.completions, self.correct, strict=True)
        return [text.strip() for text, ok in pairs if ok == correct and text.strip()]


def _user(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def sample_answers(
    task: Task,
    examples: list[Example],
    model_path: str | Path,
    samples: int,
    temperature: float | None,
    seed: int,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[Sampled]:
    """`samples` completions per example from the checkpoint, each checked by the verifier."""
    prompts = [example.prompt for example in examples]
    outputs = completions_from(
        model_path,
        prompts,
        task.max_new_tokens,
        samples=samples,
        temperature=temperature,
        seed=seed,
        on_batch=on_batch,
    )
    return [
        Sampled(example, texts, [task.verify(text, example.answer).strict for text in texts])
        for example, texts in zip(examples, outputs, strict=True)
    ]


def rft_rows(sampled: list[Sampled], rationalize: bool = True) -> Rows:
    """Rejection-sampling fine-tuning: the model's own verified answers become SFT targets.

    A prompt with no correct sample gets its reference answer instead (STaR's rationalization),
    when `rationalize` is set; otherwise it is left out.
    """
    rows: list[dict[str, Any]] = []
    accepted = rationalized = skipped = 0
    for item in sampled:
        good = list(dict.fromkeys(item.answers(correct=True)))[:RFT_KEEP_PER_PROMPT]
        if not good:
            if not rationalize:
                skipped += 1
                continue
            good, rationalized = [item.example.answer], rationalized + 1
        else:
            accepted += len(good)
        rows += [{"prompt": _user(item.example.prompt), "completion": _assistant(t)} for t in good]
    drawn = sum(len(item.completions) for item in sampled)
    correct = sum(sum(item.correct) for item in sampled)
    stats = {
        "prompts": len(sampled),
        "samples_drawn": drawn,
        "samples_correct": correct,
        "rows_from_samples": accepted,
        "rows_rationalized": rationalized,
        "prompts_skipped": skipped,
    }
    return rows, stats


def preference_rows(sampled: list[Sampled]) -> Rows:
    """Pairs from the model's own samples: chosen is verified (or the reference), rejected wrong.

    The rejected side is the model's most frequent wrong answer, the mistake it would make.
    Prompts the model never gets wrong give no pair.
    """
    rows: list[dict[str, Any]] = []
    chosen_from_samples = no_wrong = 0
    for item in sampled:
        wrong = item.answers(correct=False)
        if not wrong:
            no_wrong += 1
            continue
        right = item.answers(correct=True)
        chosen = right[0] if right else item.example.answer
        chosen_from_samples += bool(right)
        rejected = Counter(wrong).most_common(1)[0][0]
        rows.append(
            {
                "prompt": _user(item.example.prompt),
                "chosen": _assistant(chosen),
                "rejected": _assistant(rejected),
            }
        )
    stats = {
        "prompts": len(sampled),
        "pairs": len(rows),
        "chosen_from_samples": chosen_from_samples,
        "chosen_from_reference": len(rows) - chosen_from_samples,
        "prompts_without_a_wrong_sample": no_wrong,
    }
    return rows, stats


# Competence-based curriculum (Platanios et al., 2019, 1903.09848): at a fraction t of
# training, rows come from the easiest c(t) = sqrt(t (1 - c0²) + c0²) of the pool, c0 = 0.01,
# so the easy rows stay in the mix to the end instead of all coming first. A strict easy-to-hard
# sort trained one kind after another: on phrase_edits (at zero pass rate, ordered by answer
# length) one-word answers, then whole phrases. Measured there (benchmarks/lab_vs_naive.py,
# 3 × 20 steps, 36 test items): the strict sort 0.72 on test in three runs, this order 0.78
# (validation after the first stretch 0.72 against 0.64), plain SFT rows in the lab 0.81 and
# naive SFT 0.83; at seed 1 this order 0.81 and naive SFT 0.78.
INITIAL_COMPETENCE = 0.01


def competence_order(count: int, seed: int) -> list[int]:
    """An order of the rows 0..count-1, ranked easy to hard: each place draws at random among
    the unused ranks within the competence c(t) of that place, so every row is used once."""
    rng = random.Random(seed)
    unused = list(range(count))
    order = []
    for place in range(count):
        t = place / max(1, count - 1)
        competence = math.sqrt(t * (1 - INITIAL_COMPETENCE**2) + INITIAL_COMPETENCE**2)
        window = bisect.bisect_left(unused, math.ceil(competence * count))
        order.append(unused.pop(rng.randrange(window) if window else 0))
    return order


def curriculum_rows(sampled: list[Sampled], seed: int = 0) -> Rows:
    """SFT rows easy to hard by the model's own pass rate (then by answer length), in the
    competence-based order; trained with sequential sampling, so the order reaches the
    optimiser."""

    def difficulty(item: Sampled) -> tuple[float, int]:
        return (1.0 - sum(item.correct) / max(1, len(item.correct)), len(item.example.answer))

    ranked = sorted(sampled, key=difficulty)
    ordered = [ranked[i] for i in competence_order(len(ranked), seed)]
    rows = [example_row(item.example, "sft") for item in ordered]
    rates = [1.0 - difficulty(item)[0] for item in ordered]
    third = max(1, len(rates) // 3)
    stats = {
        "prompts": len(ordered),
        "pass_rate_first_third": round(sum(rates[:third]) / third, 3),
        "pass_rate_last_third": round(sum(rates[-third:]) / third, 3),
    }
    return rows, stats


def _terms(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


# texts → unit vectors (rows), as numpy.
Embed = Callable[[list[str]], Any]
# (queries, candidates, k) → for each query, the indices of its k nearest candidates.
Nearest = Callable[[list[str], list[str], int], list[list[int]]]
# Training examples repeated per validation miss.
NEAREST_PER_MISS = 2
# Extra copies a targeted set may add, as a share of its fresh rows: emphasis, not a new
# distribution. Measured on addition_3d (6 × 40 steps, benchmarks/lab_vs_naive.py): doubling
# every row the model missed (57% of them after the first iteration, 81% of the rows drawn)
# ended at 0.79 on test where plain rows on the same schedule reached 0.90; capped, 0.90.
MAX_EXTRA_SHARE = 0.25


def nearest_by_words(queries: list[str], candidates: list[str], k: int) -> list[list[int]]:
    """Nearest candidates by word overlap (Jaccard): numbers and names must match to count."""
    candidate_terms = [_terms(text) for text in candidates]
    nearest = []
    for query in queries:
        words = _terms(query)
        scores = [(_overlap(words, terms), index) for index, terms in enumerate(candidate_terms)]
        nearest.append([index for _, index in sorted(scores, reverse=True)[:k]])
    return nearest


def targeted_rows(
    examples: list[Example],
    misses: list[Example],
    missed_now: list[Example] | None = None,
    repeat: int = 2,
    nearest: Nearest = nearest_by_words,
) -> Rows:
    """Plain rows, with the training examples nearest each validation miss repeated, and those
    the current model gets wrong itself (`missed_now`: the same failure on training prompts);
    the copies add at most MAX_EXTRA_SHARE of the rows, the best-evidenced rows first.

    `nearest` measures nearness between prompts (word overlap by default, embeddings for task
    folders); the card lists which miss drove which rows.
    """
    chosen: dict[int, list[str]] = {}
    wrong_now = {example.prompt for example in missed_now or []}
    for index, example in enumerate(examples):
        if example.prompt in wrong_now:
            chosen.setdefault(index, []).append("missed by the current model")
    prompts = [example.prompt for example in examples]
    neighbours = nearest([miss.prompt for miss in misses], prompts, NEAREST_PER_MISS)
    for miss, indices in zip(misses, neighbours, strict=True):
        for index in indices:
            chosen.setdefault(index, []).append(miss.prompt)
    # Rows with the most evidence first: near a validation miss and missed now, then near a
    # miss, then missed now; within each, the order drawn.
    ranked = sorted(
        chosen, key=lambda i: (-len(chosen[i]), "missed by the current model" in chosen[i], i)
    )
    kept = set(ranked[: math.ceil(MAX_EXTRA_SHARE * len(examples) / max(1, repeat - 1))])
    rows: list[dict[str, Any]] = []
    for index, example in enumerate(examples):
        copies = repeat if index in kept else 1
        rows += [example_row(example, "sft")] * copies
    stats = {
        "misses": len(misses),
        "missed_by_current_model": len(wrong_now),
        "rows_repeated": len(kept),
        "rows_not_repeated_by_the_cap": len(chosen) - len(kept),
        "driven_by": {examples[i].prompt: chosen[i] for i in sorted(kept)[:20]},
    }
    return rows, stats


# Whether two rows' answers are the same to the task (its verifier's strict judgement).
SameAnswer = Callable[[Example, Example], bool]


def _near_copies_by_words(examples: list[Example], same_answer: SameAnswer) -> list[bool]:
    kept: list[tuple[set[str], Example]] = []
    copies = []
    for example in examples:
        words = _terms(example.prompt)
        # Only recent kept prompts: generated sets are shuffled, so copies sit anywhere, but
        # comparing each prompt with every kept one is quadratic on large folders.
        copy = any(
            _overlap(words, terms) > NEAR_COPY and same_answer(other, example)
            for terms, other in kept[-200:]
        )
        copies.append(copy)
        if not copy:
            kept.append((words, example))
    return copies


def _near_copies_by_embedding(
    examples: list[Example], embed: Embed, same_answer: SameAnswer
) -> list[bool]:
    vectors = embed([example.prompt for example in examples])
    kept: list[int] = []
    copies = []
    for index, example in enumerate(examples):
        near = (vectors[kept] @ vectors[index]) >= NEAR_COPY_COSINE if kept else []
        copy = any(
            same_answer(examples[other], example)
            for other, close in zip(kept, near, strict=True)
            if close
        )
        copies.append(copy)
        if not copy:
            kept.append(index)
    return copies


def quality_rows(task: Task, examples: list[Example], embed: Embed | None = None) -> Rows:
    """Rows that pass quality filters: the verifier accepts the reference answer, the answer's
    length is in line with the rest, and the prompt is no near-copy of a kept one.

    Near-copies: word overlap above NEAR_COPY, or, given `embed` (task folders' free text),
    cosine similarity of at least NEAR_COPY_COSINE in that embedding space, with an answer the
    task takes for the same. Alike prompts with other answers teach something else: a templated
    folder's rows differ in a name and a number, and by prompts alone most of them are dropped.
    """
    verified = [e for e in examples if e.prompt.strip() and task.verify(e.answer, e.answer).strict]
    lengths = sorted(len(example.answer) for example in verified)
    ceiling = LENGTH_OUTLIER * lengths[len(lengths) // 2] + 16 if lengths else 0
    in_line = [example for example in verified if len(example.answer) <= ceiling]

    def same_answer(kept: Example, example: Example) -> bool:
        return task.verify(example.answer, kept.answer).strict

    copies = (
        _near_copies_by_embedding(in_line, embed, same_answer)
        if embed
        else _near_copies_by_words(in_line, same_answer)
    )
    kept = [example for example, copy in zip(in_line, copies, strict=True) if not copy]
    rows = [example_row(example, "sft") for example in kept]
    stats = {
        "unverifiable_removed": len(examples) - len(verified),
        "length_outliers_removed": len(verified) - len(in_line),
        "near_copies_removed": sum(copies),
        "near_copy_measure": "embedding cosine" if embed else "word overlap",
    }
    return rows, stats
