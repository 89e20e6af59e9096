"""The DataEngineer's tools: build deduplicated, decontaminated TRL training sets from a task."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets as hf_datasets

from postlab.records.artifacts import DatasetCard, Format
from postlab.records.run import MIN_TRAINING_EXAMPLES
from postlab.tools.io.atomic import share_files, staging_dir
from postlab.tools.tasks.catalog import Example, Task, normalize_prompt
from postlab.tools.tasks.decontamination import ContaminationIndex
from postlab.tools.tasks.folders import TRAIN_FILE, VALID_FILE

CARD_FILE = "card.json"
# How far build_training_set may over-ask the task to make up for removed examples.
_MAX_OVERSAMPLE = 4


class DatasetError(ValueError):
    """A training set that cannot be built or read."""


def _clean(
    examples: list[Example], index: ContaminationIndex, size: int
) -> tuple[list[Example], int, int, int]:
    """First `size` survivors of dedup + decontamination, with (collected, dups, contaminated)."""
    seen: set[str] = set()
    kept: list[Example] = []
    collected = duplicates = contaminated = 0
    for example in examples:
        if len(kept) == size:
            break
        # Counted only up to the point where the set is full, so the card adds up:
        # collected == duplicates_removed + contaminated_removed + final_size.
        collected += 1
        key = normalize_prompt(example.prompt)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        if index.contaminates(example):
            contaminated += 1
            continue
        kept.append(example)
    return kept, collected, duplicates, contaminated


def held_out_index(task: Task, ngram_n: int = 8) -> ContaminationIndex:
    """What no training row may overlap: the test split and the validation split."""
    return ContaminationIndex(task.test_examples() + task.validation_examples(), ngram_n)


def usable_examples(task: Task, limit: int = sys.maxsize) -> list[Example]:
    """What a training set may keep of the task's first `limit` training examples (seed 0):
    distinct prompts, none overlapping test or validation."""
    pool = task.train_examples(limit, 0)
    return _clean(pool, held_out_index(task), len(pool))[0]


def check_trainable(task: Task, batch_size: int) -> list[Example] | None:
    """Refuse, before any compute, a task folder no training set can come from (DatasetError);
    return the rows it may train on (None for a task that is no folder).

    Counts what `build_training_set` would keep (distinct prompts, none overlapping test or
    validation) and refuses fewer than a batch (or MIN_TRAINING_EXAMPLES), a single distinct
    answer, or an empty validation split.
    """
    if task.spec.source != "dir" or not task.spec.task_dir:
        return None
    folder = Path(task.spec.task_dir)
    train_path = folder / TRAIN_FILE
    kept = usable_examples(task)
    needed = max(MIN_TRAINING_EXAMPLES, batch_size)
    if len(kept) < needed:
        raise DatasetError(
            f"{train_path}: {len(kept)} usable training rows after removing duplicates and "
            f"copies of test/validation rows; need at least {needed} (a batch, and no fewer "
            f"than {MIN_TRAINING_EXAMPLES})"
        )
    answers = {example.answer.strip().lower() for example in kept}
    if len(answers) == 1:
        raise DatasetError(
            f"{train_path}: all {len(kept)} training rows answer {kept[0].answer!r}; "
            "training on one constant answer can only teach that answer"
        )
    if not task.validation_examples():
        where = folder / VALID_FILE if (folder / VALID_FILE).is_file() else train_path
        raise DatasetError(f"{where}: no validation rows left after decontamination against test")
    return kept


# Turns cleaned examples into dataset rows, with what it counted on the way.
RowBuilder = Callable[[list[Example]], tuple[list[dict[str, Any]], dict[str, Any]]]


def example_row(example: Example, fmt: Format) -> dict[str, Any]:
    """One dataset row of an example in TRL's conversational format."""
    prompt = [{"role": "user", "content": example.prompt}]
    if fmt == "sft":
        return {"prompt": prompt, "completion": [{"role": "assistant", "content": example.answer}]}
    # Prompt-only for GRPO: the reward function scores generations against the `answer` column.
    return {"prompt": prompt, "answer": example.answer}


def build_training_set(
    task: Task,
    fmt: Format,
    size: int,
    seed: int,
    out_dir: Path,
    ngram_n: int = 8,
    provenance: dict[str, str | None] | None = None,
    rows_from: RowBuilder | None = None,
    recipe: str = "plain",
    collect: int | None = None,
) -> DatasetCard:
    """Collect, dedup, decontaminate, format and atomically save a training set; return its card.

    `rows_from` makes the rows from the cleaned examples (self-generated answers, preference
    pairs, an order); by default each example becomes one row of `fmt`. `collect` clean
    examples are gathered when more than `size` (a recipe that weighs a folder's rows against a
    whole schedule reads them all): `rows_from` is then given them all and makes `size` rows
    itself; the default rows are the first `size`.
    """
    if fmt not in ("sft", "grpo", "preference"):
        raise DatasetError(f"unknown format {fmt!r}; expected 'sft', 'grpo' or 'preference'")
    if fmt == "preference" and rows_from is None:
        raise DatasetError("preference rows come from a model's samples: give rows_from")
    if size <= 0:
        raise DatasetError(f"size must be positive, got {size}")
    if ngram_n <= 0:
        raise DatasetError(f"ngram_n must be positive, got {ngram_n}")
    out_dir = Path(out_dir)
    index = held_out_index(task, ngram_n)

    wanted = max(size, collect or size)
    request = wanted + max(MIN_TRAINING_EXAMPLES, wanted // 4)
    limit = wanted * _MAX_OVERSAMPLE + 64
    while True:
        examples = task.train_examples(request, seed)
        kept, collected, duplicates, contaminated = _clean(examples, index, wanted)
        # A shorter answer than asked means the source is exhausted; asking again cannot help.
        if len(kept) >= wanted or len(examples) < request or request >= limit:
            break
        request = min(request * 2, limit)

    # Copies of eval prompts already dropped from a task folder's train.jsonl are contamination
    # the source carried; counting them keeps the card honest about the file's quality.
    contaminated += task.train_eval_copies
    collected += task.train_eval_copies
    if len(kept) < MIN_TRAINING_EXAMPLES:
        raise DatasetError(
            f"only {len(kept)} training examples of task {task.name!r} survived cleaning "
            f"(collected {collected}, {duplicates} duplicates, {contaminated} contaminated); "
            f"need at least {MIN_TRAINING_EXAMPLES}"
        )

    if rows_from is None:
        rows, recipe_stats = [example_row(example, fmt) for example in kept[:size]], {}
    else:
        rows, recipe_stats = rows_from(kept)
    if len(rows) < MIN_TRAINING_EXAMPLES:
        raise DatasetError(
            f"the {recipe} recipe made only {len(rows)} rows from {len(kept)} clean examples "
            f"({recipe_stats}); need at least {MIN_TRAINING_EXAMPLES}"
        )
    dataset = hf_datasets.Dataset.from_list(rows)
    source = "generator"
    if task.spec.source == "dir" and task.spec.task_dir:
        source = str(Path(task.spec.task_dir) / TRAIN_FILE)
    # Data from elsewhere (a Hub dataset) names its source, license and size on the card.
    provenance = provenance or {}
    source = provenance.get("source") or source
    card = DatasetCard(
        name=f"{task.name}-{recipe}-{fmt}-n{len(rows)}-seed{seed}",
        task=task.name,
        format=fmt,
        source=source,
        license=provenance.get("license"),
        size_category=provenance.get("size_category"),
        seed=seed,
        requested=size,
        collected=collected,
        duplicates_removed=duplicates,
        contaminated_removed=contaminated,
        final_size=len(rows),
        ngram_n=index.n,
        template_ngrams_ignored=len(index.template),
        path=str(out_dir.resolve()),
        created_at=datetime.now(UTC).isoformat(),
        columns=list(dataset.column_names),
        sample=rows[:2],
        recipe=recipe,
        recipe_stats=recipe_stats,
    )
    _save_atomically(dataset, card, out_dir)
    return card


def _save_atomically(dataset: hf_datasets.Dataset, card: DatasetCard, out_dir: Path) -> None:
    """Write into a sibling temp dir and rename it into place, replacing any previous set."""
    staging = staging_dir(out_dir)
    old: Path | None = None
    try:
        dataset.save_to_disk(str(staging))
        (staging / CARD_FILE).write_text(card.model_dump_json(indent=2), encoding="utf-8")
        share_files(staging)
        if out_dir.exists():
            # Renaming over a non-empty directory fails; move the old one aside first so that
            # out_dir is at every moment either absent or complete, never half-written.
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / "data")
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not out_dir.exists():
            os.replace(old / "data", out_dir)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def load_training_set(path: str | Path) -> hf_datasets.Dataset:
    """Load a training set saved by build_training_set."""
    path = Path(path)
    if not (path / CARD_FILE).is_file():
        raise DatasetError(f"{path}: not a postlab training set (no {CARD_FILE})")
    return hf_datasets.load_from_disk(str(path))


def read_card(path: str | Path) -> DatasetCard:
    """The DatasetCard of a saved training set (its folder or its card.json)."""
    path = Path(path)
    card_path = path if path.name == CARD_FILE else path / CARD_FILE
    try:
        return DatasetCard.model_validate_json(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"{card_path}: missing dataset card") from exc
    except ValueError as exc:
        raise DatasetError(f"{card_path}: invalid dataset card: {exc}") from exc
