"""Plain SFT on a task folder's rows alone, and on them with rows its number rules compute.

The evidence behind the lab's move to rows number rules make (graph/number_rows.py): a folder
smaller than the steps that read it is repeated pass after pass, where its arithmetic can make
new questions with right answers.

    python benchmarks/heldout/make_tasks.py /tmp/ho
    python benchmarks/number_rows.py --task-dir /tmp/ho/word_problems

Both arms train the same steps at the same batch from the base model; the second's set is the
folder's rows and new ones made by the lab's own recipe (`recombined_rows`, deduplicated and
decontaminated against validation and test) up to the rows the steps read.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lab_vs_naive import BATCH, sft_on_rows
from measure import RESULTS, scratch_dir, write_result

from postlab.records.outcomes import binomial_stderr
from postlab.tools.data.recombination import recombined_rows
from postlab.tools.data.training_sets import build_training_set, held_out_index
from postlab.tools.evaluation.scoring import evaluate_checkpoint
from postlab.tools.models.resolution import DEFAULT_MODEL, resolve_model
from postlab.tools.tasks.folders import load_task_dir


def main() -> None:
    """Train both arms and print their scores (and write them to results/)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-dir", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    task = load_task_dir(args.task_dir)
    base = resolve_model(DEFAULT_MODEL).path
    contaminates = held_out_index(task).contaminates
    size = args.steps * BATCH

    def with_rule_rows(examples):
        return recombined_rows(examples, size, list, args.seed, contaminates)

    rows = []
    with scratch_dir("postlab-number-rows-") as out:
        for arm, builder in (("folder rows", None), ("with rule rows", with_rule_rows)):
            started = time.monotonic()
            card = build_training_set(
                task, "sft", size, args.seed, out / arm / "data", rows_from=builder
            )
            result = sft_on_rows(
                task.name, base, card.path, out / arm / "model", args.steps, seed=args.seed
            )
            row = {
                "arm": arm,
                "rows": card.final_size,
                "new_rows": card.recipe_stats.get("recombined", 0),
                "rules": "; ".join(card.recipe_stats.get("number_rules") or []),
                "status": result.status,
            }
            if result.status == "ok":
                scores = evaluate_checkpoint(result.checkpoint, task, ("validation", "test"))
                for split, scored in scores.items():
                    row[split] = scored.strict
                    row[f"{split}_stderr"] = binomial_stderr(scored.strict, scored.n)
            row["seconds"] = round(time.monotonic() - started)
            print(json.dumps(row), flush=True)
            rows.append(row)
    columns = ["arm", "rows", "new_rows", "validation", "test", "test_stderr", "seconds"]
    notes = f"{task.name}: {args.steps} steps of plain full SFT at batch {BATCH}, seed {args.seed}"
    print(write_result(f"number_rows_{task.name}", rows, columns, notes, RESULTS))


if __name__ == "__main__":
    main()
