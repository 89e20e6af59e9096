"""Plain SFT with one kind of question at a chosen share of the rows: validation and test scores.

The evidence behind the lab's `collapsed_kind` recipe: answer_format's parity questions, about a
quarter of naive SFT's rows, end answered with one label; at 0.6 of the rows they are learned.

    python benchmarks/kind_share.py --task answer_format --kind labels --share 0.6
    python benchmarks/kind_share.py --task sort_list --kind one_digit --share 0.6
    python benchmarks/kind_share.py --task unit_conversion --kind by_sixty --share 0.6

The rows come from one large clean pool (deduplicated and decontaminated like every training
set): the kind's distinct rows are repeated in turn up to their share, the others fill the rest.
"""

from __future__ import annotations

import argparse
import json
import re
import time

from datasets import concatenate_datasets, load_from_disk
from lab_vs_naive import BATCH, sft_base_on
from measure import RESULTS, scratch_dir, write_result

from postlab.tools.data.training_sets import build_training_set
from postlab.tools.evaluation.misses import label_kind, normal_answer
from postlab.tools.evaluation.scoring import evaluate_checkpoint
from postlab.tools.tasks.catalog import load_task

POOL = 6000
_NUMBER = re.compile(r"\d+")


def _one_digit(prompt: str) -> bool:
    # The numbers of the question itself, not of its instructions.
    return any(len(n) == 1 for n in _NUMBER.findall(prompt.split(":")[-1].split(".")[0]))


def _by_sixty(prompt: str) -> bool:
    # unit_conversion's conversions by 60 (h/min, min/s) are the ones that name minutes.
    return " min" in prompt


def main() -> None:
    """Train once at the given share and print the scores (and write them to results/)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="answer_format")
    parser.add_argument("--kind", choices=("labels", "one_digit", "by_sixty"), default="labels")
    parser.add_argument("--share", type=float, default=0.6)
    parser.add_argument("--steps", type=int, default=240)
    args = parser.parse_args()
    task = load_task(args.task)
    with scratch_dir("postlab-kind-share-") as out:
        pool = load_from_disk(
            build_training_set(task, "sft", POOL, seed=0, out_dir=out / "pool").path
        )
        prompts = [row[0]["content"] for row in pool["prompt"]]
        answers = [row[0]["content"] for row in pool["completion"]]
        if args.kind == "labels":
            labels = label_kind(answers)
            in_kind = [normal_answer(answer) in labels for answer in answers]
        elif args.kind == "by_sixty":
            in_kind = [_by_sixty(prompt) for prompt in prompts]
        else:
            in_kind = [_one_digit(prompt) for prompt in prompts]
        kind = pool.select([i for i, flag in enumerate(in_kind) if flag])
        others = pool.select([i for i, flag in enumerate(in_kind) if not flag])
        rows = args.steps * BATCH
        wanted = round(rows * args.share)
        chosen = kind.select([i % len(kind) for i in range(wanted)])
        data = concatenate_datasets([chosen, others.select(range(rows - wanted))]).shuffle(seed=0)
        started = time.monotonic()
        result = sft_base_on(task.name, data, out, args.steps)
        row = {
            "task": task.name,
            "kind": args.kind,
            "share": args.share,
            "kind_share_in_pool": round(len(kind) / len(pool), 3),
            "kind_distinct": len(kind),
            "kind_rows": wanted,
            "status": result.status,
            "train_s": round(time.monotonic() - started),
        }
        if result.status == "ok":
            scores = evaluate_checkpoint(result.checkpoint, task, splits=("validation", "test"))
            for split, scored in scores.items():
                row[split] = scored.strict
                row[f"{split}_misses"] = {
                    k: v for k, v in scored.error_categories.items() if k != "correct"
                }
        print(json.dumps(row))
        columns = ["task", "kind", "share", "kind_distinct", "kind_rows", "validation", "test"]
        name = f"kind_share_{task.name}_{args.kind}_{args.share:g}"
        write_result(name, [row], columns, f"{args.steps} steps of plain full SFT", RESULTS)


if __name__ == "__main__":
    main()
