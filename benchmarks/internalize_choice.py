"""Stepwise internalization on multiple_choice_arith: the sum learned written, then unwritten.

The task asks for the correct option's letter alone, and plain SFT on it stays at a uniform
guess (benchmarks/choice_skills.py: the sum must be written before its letter is found). Deng,
Choi and Shieber (2024, arXiv 2405.14838) train a model on replies that show their working, then
remove the working's tokens from the front stage by stage until the reply is the answer alone.
Here each stage is a run of plain full SFT, from the last stage's checkpoint, on new rows whose
reply keeps the last K digits of the correct option's value before its letter ("141 (C)",
"41 (C)", "1 (C)", then "C"); the prompt is the task's own throughout.

    python benchmarks/internalize_choice.py --keep 3,2,1,0 --steps 60

Prints each stage's validation (the letter found in its reply, so "41 (C)" counts) and, at the
end, validation and test as the task scores them (the letter alone), with the commonest reply.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from choice_skills import TASK, option_values
from datasets import Dataset, load_from_disk
from lab_vs_naive import BATCH, sft_on_rows
from measure import RESULTS, scratch_dir, write_result

from postlab.tools.data.training_sets import build_training_set, example_row
from postlab.tools.evaluation.scoring import evaluate_checkpoint, generate
from postlab.tools.models.resolution import DEFAULT_MODEL, resolve_model
from postlab.tools.tasks.catalog import Example, load_task


def with_working(prompt: str, letter: str, keep: int) -> str:
    """The reply a stage trains on: the last `keep` digits of the correct option's value, then
    its letter in brackets; the letter alone when `keep` is 0."""
    if keep == 0:
        return letter
    value = option_values(prompt)[letter]
    return f"{value[-keep:]} ({letter})"


def _keeps(text: str) -> list[int]:
    try:
        keeps = [int(part) for part in text.split(",")]
    except ValueError:
        raise SystemExit(f"--keep wants digit counts such as 3,2,1,0, got {text!r}") from None
    if not keeps or any(keep < 0 for keep in keeps):
        raise SystemExit(f"--keep wants counts of at least 0, got {text!r}")
    return keeps


def main() -> None:
    """Train the stages one after another and print what each, and the last, scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", default="3,2,1,0", help="digits kept, one count per stage")
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps per stage")
    parser.add_argument("--limit", type=int, default=60, help="validation items a stage scores")
    args = parser.parse_args()
    keeps = _keeps(args.keep)
    task = load_task(TASK)
    model = resolve_model(DEFAULT_MODEL).path
    started = time.monotonic()
    row: dict = {"keep": args.keep, "steps_per_stage": args.steps}
    with scratch_dir("postlab-internalize-") as out:
        for stage, keep in enumerate(keeps):
            pool = build_training_set(
                task, "sft", args.steps * BATCH, seed=stage, out_dir=out / f"pool{stage}"
            )
            rows = [
                example_row(
                    Example(prompt=prompt, answer=with_working(prompt, letter, keep)), "sft"
                )
                for prompt, letter in (
                    (r["prompt"][0]["content"], r["completion"][0]["content"])
                    for r in load_from_disk(pool.path)
                )
            ]
            Dataset.from_list(rows).save_to_disk(str(out / f"data{stage}"))
            result = sft_on_rows(
                task.name, model, str(out / f"data{stage}"), out / f"model{stage}", args.steps,
                seed=stage,
            )  # fmt: skip
            if result.status != "ok":
                raise SystemExit(f"stage {stage} failed: {result.failure}")
            model = result.checkpoint
            scored = evaluate_checkpoint(model, task, ("validation",), limit=args.limit)
            found = round(scored["validation"].lenient, 3)
            row[f"stage{stage}_letter_found"] = found
            print(json.dumps({"stage": stage, "keep": keep, "letter_found": found}), flush=True)
        final = evaluate_checkpoint(model, task, ("validation", "test"))
        replies = generate(model, [e.prompt for e in task.validation_examples()], 8)
        commonest, count = Counter(reply.strip() for reply in replies).most_common(1)[0]
        row |= {
            "validation": round(final["validation"].strict, 3),
            "test": round(final["test"].strict, 3),
            "commonest": f"{commonest} ({count / len(replies):.0%})",
            "wall_s": round(time.monotonic() - started),
        }
        print(json.dumps(row), flush=True)
    columns = list(row)
    notes = (
        f"stepwise internalization on {TASK}: plain full SFT, {args.steps} steps a stage, "
        f"digits of the correct value kept before the letter by stage: {args.keep}"
    )
    write_result(
        "internalize_choice_" + args.keep.replace(",", "_"), [row], columns, notes, RESULTS
    )


if __name__ == "__main__":
    main()
