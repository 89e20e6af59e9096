"""Held-out evaluation: batched greedy generation, strict and lenient scores, failure samples."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from postlab.records.artifacts import FailureSample
from postlab.tools.evaluation.generation import GENERATION_BATCH, completions_from
from postlab.tools.models.resolution import is_checkpoint_dir
from postlab.tools.tasks.catalog import Example, Task, normalize_prompt
from postlab.tools.tasks.verifiers import parse_number

Split = Literal["validation", "test"]


class EvaluationError(RuntimeError):
    """A checkpoint that could not be evaluated (missing, unloadable, or the command failed)."""


class EvalResult(BaseModel):
    """Scores of one checkpoint on a task's held-out split; fractions in [0, 1]."""

    model_path: str
    task: str
    n: int
    strict: float
    lenient: float
    error_categories: dict[str, int] = Field(default_factory=dict)
    failures: list[FailureSample] = Field(default_factory=list)
    missed_prompts: list[str] = Field(default_factory=list)
    # Every miss whose kind no rule could name ("wrong"), for grouping by meaning.
    free_form_misses: list[FailureSample] = Field(default_factory=list)
    # Share of items given one and the same answer, when that many did (else 0).
    collapse: float = 0.0
    # strict and lenient count every reference answer equally (balanced accuracy).
    balanced_by_label: bool = False
    wall_s: float = 0.0


# When this share of the scored items (and at least COLLAPSE_MIN_ITEMS) got one and the same
# completion, and COLLAPSE_EXCESS more than the commonest reference answer's share, the model has
# collapsed to a constant answer. The excess matters on label tasks: a perfect yes/no classifier
# on a balanced split says "yes" to half the items (on the held-out above_500 folder, a model
# 70% right on validation gave one answer to 72% of it and was wrongly called collapsed).
# On a skewed split the excess cannot be had (90% "yes" + 0.25); there a model that gives the
# commonest answer to COLLAPSE_SWALLOWED of the items that need another one has collapsed too.
COLLAPSE_SHARE = 0.5
COLLAPSE_EXCESS = 0.25
COLLAPSE_SWALLOWED = 0.75
COLLAPSE_MIN_ITEMS = 5


# Items of a list answer ("2, 16, 57"): lists of numbers are what a verifier can compare item by
# item; a model that sorts "8" after "64" has every item right and only the order wrong.
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

# On a task with free answers, an answer given by at least this share of the items (and by
# COLLAPSE_MIN_ITEMS) is a label: a kind of question answered from a fixed set.
LABEL_MIN_SHARE = 0.05

# Answers drawn from at most this many distinct values (and repeating) make a label set: a
# miss that names another label is a confusion between classes, not free-form nonsense.
MAX_LABELS = 12


def label_set(answers: list[str]) -> frozenset[str]:
    """The task's labels when its answers are a small repeating set (else empty)."""
    labels = frozenset(normal_answer(answer) for answer in answers)
    if len(labels) > MAX_LABELS or len(labels) * 2 > len(answers):
        return frozenset()
    return labels


def normal_answer(text: str) -> str:
    """An answer as labels are compared: case, spacing and a trailing full stop ignored."""
    return normalize_prompt(text).strip(" .")


def categorize(
    completion: str,
    strict: bool,
    lenient: bool,
    answer: str = "",
    labels: frozenset[str] = frozenset(),
) -> str:
    """Name the kind of miss: correct, format (right answer, wrong shape), empty, another of the
    task's labels (wrong_label; score() names label_collapse, the one label a kind of question
    always gets), a list with the right items out of order (misordered) or with
    items lost, added or changed (wrong_items), a number off by a power of ten (a lost or
    spurious carry), or wrong."""
    if strict:
        return "correct"
    if lenient:
        return "format"
    if not completion.strip():
        return "empty"
    if labels and normal_answer(completion) in labels:
        return "wrong_label"
    listed = list_miss(completion, answer)
    if listed:
        return listed
    got, expected = parse_number(completion), parse_number(answer)
    if got is not None and expected is not None and got != expected:
        gap = abs(got - expected)
        if gap == gap.to_integral_value() and gap >= 10 and str(int(gap)).strip("0") == "1":
            return "off_by_power_of_ten"
    return "wrong"


def list_miss(completion: str, answer: str) -> str | None:
    """A comma-separated list answer's miss: misordered (the same items) or wrong_items."""
    expected = _NUMBER.findall(answer)
    one_number = parse_number(answer) is not None  # "1,234" is a number, not a list
    if one_number or len(expected) < 2 or len(answer.split(",")) != len(expected):
        return None
    return (
        "misordered" if sorted(_NUMBER.findall(completion)) == sorted(expected) else "wrong_items"
    )


def collapsed_share(completions: list[str]) -> float:
    """Share of completions equal to the most common non-empty one (0 when too few to tell).

    Empty outputs are their own category ("empty"), not a constant answer.
    """
    texts = [" ".join(text.split()).lower() for text in completions]
    answered = [text for text in texts if text]
    if len(texts) < COLLAPSE_MIN_ITEMS or not answered:
        return 0.0
    return Counter(answered).most_common(1)[0][1] / len(texts)


def generate(
    model_path: str | Path,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int = GENERATION_BATCH,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Greedy completions of chat prompts, batched, with the model's chat template."""
    completions = completions_from(
        model_path, prompts, max_new_tokens, batch_size=batch_size, on_batch=on_batch
    )
    return [texts[0] for texts in completions]


def collapse_threshold(expected: float, others: int) -> float:
    """The share of one answer that makes a collapse, when the commonest reference holds
    `expected` of the items and `others` items need another answer."""
    excess = expected + COLLAPSE_EXCESS
    if others < COLLAPSE_MIN_ITEMS:
        # Too few items need another answer to tell a collapse from a few misses.
        return max(COLLAPSE_SHARE, excess)
    swallowed = expected + COLLAPSE_SWALLOWED * (1.0 - expected)
    return max(COLLAPSE_SHARE, min(excess, swallowed))


def collapsed_label(references: list[str], completions: list[str]) -> tuple[str, frozenset[str]]:
    """On a task mixing free answers with a kind of question answered by labels (answer_format's
    "Is 975 even?" among its comparisons), the one label given to nearly every question of that
    kind, and the kind's labels; ("", empty) when no such kind collapsed.

    The split-wide collapse cannot see it: SmolLM2 after 240 steps on answer_format said "yes" to
    all 34 parity questions of its validation split, a third of the answers.
    """
    counts = Counter(references)
    labels = frozenset(
        answer
        for answer, count in counts.items()
        if count >= max(COLLAPSE_MIN_ITEMS, LABEL_MIN_SHARE * len(references))
    )
    kind = [i for i, reference in enumerate(references) if reference in labels]
    if len(labels) < 2 or len(kind) == len(references):
        return "", frozenset()
    given, count = Counter(normal_answer(completions[i]) for i in kind).most_common(1)[0]
    commonest = Counter(references[i] for i in kind).most_common(1)[0][1]
    threshold = collapse_threshold(commonest / len(kind), len(kind) - commonest)
    if given in labels and count / len(kind) >= threshold:
        return given, labels
    return "", frozenset()


def _accuracy(hits: Counter[str], references: Counter[str], balanced: bool) -> float:
    """The share of items right, or with `balanced` the mean of each reference answer's share."""
    if balanced:
        shares = [hits[answer] / count for answer, count in references.items()]
        # A mean of ones can land a rounding error past 1.
        return min(1.0, sum(shares) / len(shares))
    n = sum(references.values())
    return sum(hits.values()) / n if n else 0.0


def score(
    task: Task,
    examples: list[Example],
    completions: list[str],
    model_path: str,
    failure_samples: int = 8,
    wall_s: float = 0.0,
    balance_labels: bool = False,
) -> EvalResult:
    """Verify completions against answers and collect error categories and failure samples.

    With `balance_labels` on a task whose answers are labels, every reference answer weighs the
    same in strict and lenient (balanced accuracy): a split whose skew says nothing about test
    then cannot reward a model for learning that skew.
    """
    categories: Counter[str] = Counter()
    failures: list[FailureSample] = []
    free_form: list[FailureSample] = []
    missed: list[str] = []
    strict_hits: Counter[str] = Counter()
    lenient_hits: Counter[str] = Counter()
    labels = label_set([example.answer for example in examples])
    normal = [normal_answer(example.answer) for example in examples]
    references = Counter(normal)
    balanced = balance_labels and bool(labels) and len(references) > 1
    same, kind_labels = collapsed_label(normal, completions) if not labels else ("", frozenset())
    for example, reference, completion in zip(examples, normal, completions, strict=True):
        verdict = task.verify(completion, example.answer)
        strict_hits[reference] += verdict.strict
        lenient_hits[reference] += verdict.lenient
        category = categorize(completion, verdict.strict, verdict.lenient, example.answer, labels)
        if category == "wrong" and reference in kind_labels and normal_answer(completion) == same:
            category = "label_collapse"
        categories[category] += 1
        if category == "correct":
            continue
        missed.append(example.prompt)
        sample = FailureSample(
            prompt=example.prompt, answer=example.answer, completion=completion, category=category
        )
        if len(failures) < failure_samples:
            failures.append(sample)
        if category == "wrong":
            free_form.append(sample)
    n = len(examples)
    # A collapse is told apart from many distinct misses: it changes the data, not the LR.
    share = collapsed_share(completions)
    commonest = references.most_common(1)[0][1] if n else 0
    expected = commonest / n if n else 1.0
    collapsed = len(references) > 1 and share >= collapse_threshold(expected, n - commonest)
    return EvalResult(
        model_path=str(model_path),
        task=task.name,
        n=n,
        strict=_accuracy(strict_hits, references, balanced),
        lenient=_accuracy(lenient_hits, references, balanced),
        error_categories=dict(categories),
        failures=failures,
        missed_prompts=missed,
        free_form_misses=free_form,
        collapse=round(share, 3) if collapsed else 0.0,
        balanced_by_label=balanced,
        wall_s=wall_s,
    )


def split_examples(task: Task, split: Split, limit: int | None = None) -> list[Example]:
    """A split's items (the first `limit` of them when given)."""
    examples = task.validation_examples() if split == "validation" else task.test_examples()
    return examples[:limit] if limit else examples


def evaluate_checkpoint(
    model_path: str | Path,
    task: Task,
    splits: tuple[Split, ...] = ("validation",),
    limit: int | None = None,
    batch_size: int = GENERATION_BATCH,
    on_batch: Callable[[int, int], None] | None = None,
    balanced: tuple[Split, ...] = (),
) -> dict[Split, EvalResult]:
    """Score a checkpoint on the task's splits, loading it once; each split scored on its own
    (the `balanced` ones counting every reference answer equally)."""
    path = Path(model_path)
    if not is_checkpoint_dir(path):
        raise EvaluationError(f"no checkpoint at {path} (no config.json with weights)")
    chosen = {split: split_examples(task, split, limit) for split in splits}
    empty = [split for split, examples in chosen.items() if not examples]
    if empty:
        raise EvaluationError(f"task {task.name!r} has no {' or '.join(empty)} items to score")
    prompts = [example.prompt for examples in chosen.values() for example in examples]
    started = time.monotonic()
    try:
        completions = generate(path, prompts, task.max_new_tokens, batch_size, on_batch)
    except (OSError, ValueError, RuntimeError) as error:
        raise EvaluationError(f"could not evaluate {path}: {error}") from error
    wall_s = time.monotonic() - started
    results: dict[Split, EvalResult] = {}
    offset = 0
    for split, examples in chosen.items():
        answers = completions[offset : offset + len(examples)]
        offset += len(examples)
        share = wall_s * len(examples) / len(prompts)
        results[split] = score(
            task, examples, answers, str(path), wall_s=share, balance_labels=split in balanced
        )
    return results
