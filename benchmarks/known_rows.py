"""SFT on a recall folder's rows the base model knows, or all of them: test after each setting.

The evidence behind the lab's known rows and one pass a stretch (graph/known_rows.py): on the
held-out capitals folder, fine-tuning loses capitals the base model gave in sentences, more the
longer it trains.

    python benchmarks/heldout/make_tasks.py DIR
    python benchmarks/known_rows.py --task-dir DIR/capitals \
        --settings known:full:6e-5:10,known:full:6e-5:40,known:lora:2e-4:40,all:full:6e-5:10

Each setting is rows:adapter:learning_rate:steps, batch 8, from the base model (`--settings ""`
only counts the test answers the base model's greedy replies hold). The known rows are asked
of the base model once, as the lab asks them (tools/data/known_rows.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from datasets import Dataset
from lab_vs_naive import BATCH, sft_on_rows
from measure import RESULTS, scratch_dir, write_result

from postlab.tools.data.known_rows import REPLY_TOKENS, known_rows
from postlab.tools.data.training_sets import example_row, usable_examples
from postlab.tools.evaluation.generation import completions_from
from postlab.tools.evaluation.scoring import evaluate_checkpoint
from postlab.tools.models.resolution import DEFAULT_MODEL, resolve_model
from postlab.tools.tasks.folders import load_task_dir
from postlab.tools.tasks.verifiers import contains_answer

DEFAULT_SETTINGS = "known:full:6e-5:10,known:full:6e-5:40,known:lora:2e-4:40,all:full:6e-5:10"


def main() -> None:
    """Train each setting once and print validation and test scores (also to results/)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-dir", type=Path, required=True)
    parser.add_argument("--settings", default=DEFAULT_SETTINGS)
    args = parser.parse_args()
    task = load_task_dir(args.task_dir)
    base = resolve_model(DEFAULT_MODEL).path
    test = task.test_examples()
    replies = completions_from(base, [example.prompt for example in test], REPLY_TOKENS)
    held = sum(contains_answer(r[0], e.answer) for e, r in zip(test, replies, strict=True))
    print(f"the base model's greedy replies hold {held} of {len(test)} test answers")
    if not args.settings:
        return
    usable = usable_examples(task)
    known = known_rows(usable, base).known
    print(f"{len(known)} of {len(usable)} usable rows known to the base model")
    rows_of = {"known": known, "all": usable}
    results = []
    with scratch_dir("postlab-known-rows-") as out:
        for index, setting in enumerate(args.settings.split(",")):
            which, adapter, rate, steps = setting.split(":")
            data = out / f"data-{index}"
            Dataset.from_list([example_row(e, "sft") for e in rows_of[which]]).save_to_disk(data)
            output = out / f"model-{index}"
            result = sft_on_rows(
                task.name, base, str(data), output, int(steps), float(rate), adapter=adapter
            )
            row = {"rows": which, "row_count": len(rows_of[which]), "adapter": adapter}
            row |= {"learning_rate": float(rate), "steps": int(steps), "status": result.status}
            if result.status == "ok":
                scores = evaluate_checkpoint(result.checkpoint, task, splits=("validation", "test"))
                row |= {split: round(scored.strict, 3) for split, scored in scores.items()}
            print(json.dumps(row))
            results.append(row)
    columns = ["rows", "row_count", "adapter", "learning_rate", "steps", "validation", "test"]
    notes = f"SFT from the base model on {task.name}, batch {BATCH}"
    print(write_result(f"known_rows_{task.name}", results, columns, notes, RESULTS))


if __name__ == "__main__":
    main()
