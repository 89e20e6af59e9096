"""Held-out evaluation: batched greedy generation, strict and lenient scores, failure samples."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from postlab.records.artifacts import FailureSample
from postlab.records.outcomes import ConstantAnswer
from postlab.tools.evaluation.generation import GENERATION_BATCH, completions_from
from postlab.tools.evaluation.misses import (
    categorize,
    collapse_threshold,
    collapsed_label,
    collapsed_share,
    label_set,
    normal_answer,
    question_kind,
    unlearned_kinds,
)
from postlab.tools.models.resolution import is_checkpoint_dir
from postlab.tools.tasks.catalog import Example, Task

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
    # Every scored item's prompt, in order, and those missed.
    prompts: list[str] = Field(default_factory=list)
    missed_prompts: list[str] = Field(default_factory=list)
    # Every miss whose kind no rule could name ("wrong"), for grouping by meaning.
    free_form_misses: list[FailureSample] = Field(default_factory=list)
    # Share of items given one and the same answer, when that many did (else 0).
    collapse: float = 0.0
    # The kinds of question (prompts with their numbers blanked) missed far more than the rest.
    unlearned_kinds: list[str] = Field(default_factory=list)
    # strict and lenient count every reference answer equally (balanced accuracy).
    balanced_by_label: bool = False
    wall_s: float = 0.0


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
    verdicts = [task.verify(c, e.answer) for e, c in zip(examples, completions, strict=True)]
    kinds = [question_kind(example.prompt) for example in examples]
    unlearned = unlearned_kinds(kinds, [verdict.strict for verdict in verdicts], normal)
    for example, reference, completion, verdict, kind in zip(
        examples, normal, completions, verdicts, kinds, strict=True
    ):
        strict_hits[reference] += verdict.strict
        lenient_hits[reference] += verdict.lenient
        category = categorize(completion, verdict.strict, verdict.lenient, example.answer, labels)
        if category == "wrong" and reference in kind_labels and normal_answer(completion) == same:
            category = "label_collapse"
        elif category == "wrong" and kind in unlearned:
            category = "unlearned_kind"
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
        prompts=[example.prompt for example in examples],
        missed_prompts=missed,
        free_form_misses=free_form,
        collapse=round(share, 3) if collapsed else 0.0,
        unlearned_kinds=sorted(unlearned),
        balanced_by_label=balanced,
        wall_s=wall_s,
    )


def split_examples(task: Task, split: Split, limit: int | None = None) -> list[Example]:
    """A split's items (the first `limit` of them when given)."""
    examples = task.validation_examples() if split == "validation" else task.test_examples()
    return examples[:limit] if limit else examples


# Training rows sampled to measure the training answers: their labels, skew and commonest.
TRAINING_ANSWER_SAMPLE = 400


def training_answers(task: Task) -> list[str]:
    """The answers of a fixed sample of the task's training rows (seed 0)."""
    return [example.answer for example in task.train_examples(TRAINING_ANSWER_SAMPLE, seed=0)]


def constant_answer(
    task: Task,
    train_answers: list[str],
    limit: int | None = None,
    balanced: tuple[Split, ...] = (),
    with_test: bool = True,
) -> ConstantAnswer | None:
    """The training answers' commonest given to every validation (and test) item, scored as a
    model's answers are; None where the answers are no label set, or validation is empty or asks
    for one label only (every model would then sit at or under a floor of 1.0)."""
    splits: tuple[Split, ...] = ("validation", "test") if with_test else ("validation",)
    chosen = {split: split_examples(task, split, limit) for split in splits}
    validation_labels = {normal_answer(example.answer) for example in chosen["validation"]}
    if not label_set(train_answers) or len(validation_labels) < 2:
        return None
    # The commonest label, as its commonest spelling: a strict match compares the spelling too.
    commonest = Counter(normal_answer(answer) for answer in train_answers).most_common(1)[0][0]
    spellings = Counter(answer for answer in train_answers if normal_answer(answer) == commonest)
    answer = spellings.most_common(1)[0][0]
    scored = {
        split: score(
            task, examples, [answer] * len(examples), "", 0, balance_labels=split in balanced
        )
        for split, examples in chosen.items()
        if examples
    }
    test = scored.get("test")
    return ConstantAnswer(
        answer=answer,
        validation=scored["validation"].strict,
        validation_n=scored["validation"].n,
        test=test.strict if test else None,
        test_n=test.n if test else None,
    )


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
