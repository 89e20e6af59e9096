"""The lab's best checkpoint averaged with its schedule's earlier ones: validation and test.

Latest-weight averaging (a uniform mean of the last k checkpoints of one run) is reported to
help where training ends at a high rate; the lab's schedules anneal to zero, so it is measured
here before it is offered as a move:

    python benchmarks/weight_average.py --task sort_list          # runs the lab first (~15 min)
    python benchmarks/weight_average.py --run-dir RUN --members 2 3

A run directory must come from a run with --keep-checkpoints (the lab otherwise deletes the
checkpoints it no longer needs). Members follow the best's schedule back through its parents.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from lab_vs_naive import FULL, lab
from measure import RESULTS, write_result
from safetensors.torch import load_file, save_file
from transformers.utils import SAFE_WEIGHTS_NAME

from postlab.memory.library import LIBRARY_ENV, LIBRARY_OFF
from postlab.tools.evaluation.scoring import evaluate_checkpoint
from postlab.tools.io.rundir import CHECKPOINT_DIR, SUMMARY_FILE, iteration_dir, iteration_label
from postlab.tools.models.resolution import DEFAULT_MODEL
from postlab.tools.tasks.catalog import load_task


def schedule_chain(summary: dict) -> list[int]:
    """The best iteration, then its parents for as long as they share its schedule."""
    rows = {row["iteration"]: row for row in summary["iterations"]}
    chain = [next(i for i in rows if iteration_label(i) == summary["best_label"])]
    while rows[chain[-1]]["spec"]["schedule_offset"] > 0 and rows[chain[-1]]["parent"] in rows:
        chain.append(rows[chain[-1]]["parent"])
    return chain


def averaged_checkpoint(folders: list[Path], out: Path) -> Path:
    """A checkpoint whose weights are the uniform mean of the folders' (config of the first)."""
    states = [load_file(str(folder / SAFE_WEIGHTS_NAME)) for folder in folders]
    mean = {
        name: torch.stack([state[name].float() for state in states]).mean(0).to(tensor.dtype)
        for name, tensor in states[0].items()
    }
    shutil.copytree(folders[0], out)
    save_file(mean, str(out / SAFE_WEIGHTS_NAME), metadata={"format": "pt"})
    return out


def main() -> None:
    """Score the best and each average on validation and test; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--task", default="sort_list")
    parser.add_argument("--members", type=int, nargs="+", default=[2, 3])
    args = parser.parse_args()
    run_dir = args.run_dir
    if run_dir is None:
        os.environ.setdefault(LIBRARY_ENV, LIBRARY_OFF)
        run_dir = Path(tempfile.mkdtemp(prefix="postlab-average-")) / args.task
        lab(args.task, DEFAULT_MODEL, dict(FULL), run_dir, keep_checkpoints=True)
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    task = load_task(summary["task"], summary["task_dir"])
    chain = schedule_chain(summary)
    rows = []
    for count in [1, *args.members]:
        members = chain[:count]
        folders = [iteration_dir(run_dir, i) / CHECKPOINT_DIR for i in members]
        if len(members) < count or not all((f / SAFE_WEIGHTS_NAME).exists() for f in folders):
            print(f"skipped {count}: the chain {chain} has no kept checkpoints for it")
            continue
        scratch = Path(tempfile.mkdtemp(prefix="postlab-average-"))
        try:
            checkpoint = averaged_checkpoint(folders, scratch / "checkpoint")
            scores = evaluate_checkpoint(checkpoint, task, splits=("validation", "test"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        rows.append(
            {
                "members": ", ".join(iteration_label(i) for i in members),
                "validation": round(scores["validation"].strict, 3),
                "test": round(scores["test"].strict, 3),
            }
        )
    notes = (
        f"{summary['task']}: the best by validation ({summary['best_label']}) and uniform "
        f"averages with its schedule's earlier checkpoints ({run_dir})."
    )
    table = write_result(
        f"weight_average_{summary['task']}",
        rows,
        ["members", "validation", "test"],
        notes,
        RESULTS,
    )
    print(table)


if __name__ == "__main__":
    main()
