"""Rows made with the current model: its verified answers (RFT), preference pairs, an order.

Each builder takes cleaned training examples and returns dataset rows plus what it counted, for
`build_training_set(rows_from=...)`. Sampling uses the checkpoint the iteration starts from.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postlab.tools.evaluation.generation import complete, load_for_generation
from postlab.tools.tasks.catalog import Example, Task

Rows = tuple[list[dict[str, Any]], dict[str, Any]]
# Samples drawn per prompt for RFT and preference pairs, and their temperature: enough spread
# to find both right and wrong answers on a task the model half knows.
SAMPLES_PER_PROMPT = 4
TEMPERATURE = 0.8
# Completions kept per prompt in RFT: two distinct correct answers are enough variety.
RFT_KEEP_PER_PROMPT = 2
# Prompts whose word sets overlap above this are near-copies for the quality filter.
NEAR_COPY = 0.9
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
    model, tokenizer = load_for_generation(model_path)
    prompts = [example.prompt for example in examples]
    outputs = complete(
        model,
        tokenizer,
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


def curriculum_rows(sampled: list[Sampled]) -> Rows:
    """SFT rows ordered easy to hard by the model's own pass rate (then by answer length).

    Trained with sequential sampling, so the order survives into the optimiser.
    """

    def difficulty(item: Sampled) -> tuple[float, int]:
        return (1.0 - sum(item.correct) / max(1, len(item.correct)), len(item.example.answer))

    ordered = sorted(sampled, key=difficulty)
    rows = [
        {"prompt": _user(item.example.prompt), "completion": _assistant(item.example.answer)}
        for item in ordered
    ]
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


def targeted_rows(
    examples: list[Example],
    misses: list[Example],
    missed_now: list[Example] | None = None,
    repeat: int = 2,
) -> Rows:
    """Plain rows, with the training examples nearest each validation miss repeated, and those
    the current model gets wrong itself (`missed_now`: the same failure on training prompts).

    Nearness is word overlap (Jaccard) between prompts; the card lists which miss drove which rows.
    """
    chosen: dict[int, list[str]] = {}
    wrong_now = {example.prompt for example in missed_now or []}
    for index, example in enumerate(examples):
        if example.prompt in wrong_now:
            chosen.setdefault(index, []).append("missed by the current model")
    for miss in misses:
        words = _terms(miss.prompt)
        scores = [
            (_overlap(words, _terms(example.prompt)), index)
            for index, example in enumerate(examples)
        ]
        for _, index in sorted(scores, reverse=True)[:2]:
            chosen.setdefault(index, []).append(miss.prompt)
    rows: list[dict[str, Any]] = []
    for index, example in enumerate(examples):
        copies = repeat if index in chosen else 1
        rows += [
            {"prompt": _user(example.prompt), "completion": _assistant(example.answer)}
        ] * copies
    stats = {
        "misses": len(misses),
        "missed_by_current_model": len(wrong_now),
        "rows_repeated": len(chosen),
        "driven_by": {examples[i].prompt: drivers for i, drivers in list(chosen.items())[:20]},
    }
    return rows, stats


def quality_rows(task: Task, examples: list[Example]) -> Rows:
    """Rows that pass quality filters: the verifier accepts the reference answer, no near-copies.

    Near-copies are prompts whose word sets overlap above 0.9 with a kept one.
    """
    kept: list[Example] = []
    kept_terms: list[set[str]] = []
    unverifiable = near_copies = 0
    for example in examples:
        if not task.verify(example.answer, example.answer).strict:
            unverifiable += 1
            continue
        words = _terms(example.prompt)
        if any(
            len(words & other) / max(1, len(words | other)) > 0.9 for other in kept_terms[-200:]
        ):
            near_copies += 1
            continue
        kept.append(example)
        kept_terms.append(words)
    rows = [
        {"prompt": _user(example.prompt), "completion": _assistant(example.answer)}
        for example in kept
    ]
    stats = {"unverifiable_removed": unverifiable, "near_copies_removed": near_copies}
    return rows, stats
