"""Dips on a label-balanced validation, judged three ways, replayed from recorded runs.

On a label folder whose validation is lent from training, the lab counts every answer equally
(balanced accuracy), and a stretch below the best on the schedule it continued is held as noise
when it stays within one binomial standard error of that best (`agents/best_place.py`); on a
plain validation the same dip is judged item by item (McNemar's test). Balanced accuracy weighs
an item by one over (the number of labels × its label's count), so a paired test on it weighs
each changed item the same way: the weighted difference against the spread of the changed
items' weights (normal approximation, with the continuity correction scaled by their mean
weight, so that equal weights give McNemar's test exactly).

This reads the summaries of finished runs and, for every evaluation that scored below the
highest before it without collapsing onto one answer, prints what each rule says: held by the
standard error, held by McNemar's test unweighted, held by the weighted one. It trains nothing.

    python benchmarks/balanced_dips.py runs/*/summary.json

A run whose validation cannot be rebuilt (a folder moved, items no longer there) is skipped
with the reason. Whether the lab would have held a dip also depends on the schedule (only a
stretch that continued the best's schedule, and did not re-read every row its folder holds, is
held): the `rereads` column says whether it did, the `move` column what the lab did next.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

from measure import RESULTS, write_result

from postlab.records.artifacts import DatasetCard
from postlab.records.outcomes import DIP_Z, binomial_stderr, dip_is_chance
from postlab.tools.evaluation.misses import normal_answer
from postlab.tools.tasks.catalog import Example, Task, load_task
from postlab.tools.tasks.folders import load_task_dir
from postlab.tools.training.recipes import rereads_its_source


def balanced_weights(examples: list[Example]) -> dict[str, float]:
    """Each validation prompt's weight in balanced accuracy (the weights sum to one)."""
    labels = [normal_answer(example.answer) for example in examples]
    counts = Counter(labels)
    return {
        example.prompt: 1 / (len(counts) * counts[label])
        for example, label in zip(examples, labels, strict=True)
    }


def weighted_dip_is_chance(lost: list[float], gained: list[float]) -> bool:
    """McNemar's test on weighted items: whether the weight of the items lost over those gained
    is within chance (one-sided 5 %); with equal weights it is `dip_is_chance`."""
    changed = lost + gained
    if not changed:
        return True
    mean = sum(changed) / len(changed)
    spread = math.sqrt(sum(weight * weight for weight in changed))
    return sum(lost) - sum(gained) - mean <= DIP_Z * spread


def _task_of(summary: dict) -> Task:
    folder = summary.get("task_dir")
    return load_task_dir(Path(folder)) if folder else load_task(summary["task"])


def dips(summary: dict) -> list[dict]:
    """Every non-collapsed evaluation below the highest before it, judged three ways."""
    weights = balanced_weights(_task_of(summary).validation_examples())
    records = [e for e in summary.get("evaluations") or [] if e["iteration"] > 0]
    unknown = {p for e in records for p in e.get("missed") or [] if p not in weights}
    if unknown:
        raise ValueError(f"{len(unknown)} missed prompts are not in the rebuilt validation")
    moves = {it["iteration"]: it.get("move") for it in summary.get("iterations") or []}
    cards = {
        card["path"]: DatasetCard.model_construct(**card) for card in summary.get("datasets") or []
    }
    reread = {
        it["iteration"]: it.get("dataset") in cards and rereads_its_source(cards[it["dataset"]])
        for it in summary.get("iterations") or []
    }
    rows = []
    for i, record in enumerate(records):
        earlier = records[:i]
        if not earlier or record.get("collapse") or not record.get("balanced_by_label"):
            continue
        peak = max(earlier, key=lambda e: e["strict"])
        if record["strict"] > peak["strict"]:
            continue
        before, after = Counter(peak["missed"]), Counter(record["missed"])
        lost, gained = list((after - before).elements()), list((before - after).elements())
        rows.append(
            {
                "task": summary.get("task"),
                "iteration": record["iteration"],
                "peak": peak["iteration"],
                "scores": f"{peak['strict']:.3f} → {record['strict']:.3f}",
                "n": record["n"],
                "gained": len(gained),
                "lost": len(lost),
                "held_stderr": record["strict"]
                >= peak["strict"] - binomial_stderr(peak["strict"], record["n"]),
                "held_mcnemar": dip_is_chance(len(lost), len(gained)),
                "held_weighted": weighted_dip_is_chance(
                    [weights[p] for p in lost], [weights[p] for p in gained]
                ),
                "rereads": reread.get(record["iteration"]),
                "move": moves.get(record["iteration"] + 1),
            }
        )
    return rows


def main() -> None:
    """Print every recorded dip's three verdicts (and write results/balanced_dips.*)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", nargs="+", type=Path, help="runs' summary.json files")
    args = parser.parse_args()
    rows = []
    for path in args.summaries:
        summary = json.loads(path.read_text())
        try:
            found = dips(summary)
        except (ValueError, OSError) as error:
            print(f"{path}: skipped: {error}")
            continue
        rows.extend(found)
    columns = ["task", "iteration", "peak", "scores", "n", "gained", "lost"]
    columns += ["held_stderr", "held_mcnemar", "held_weighted", "rereads", "move"]
    notes = (
        "dips below the highest validation score before them, on label-balanced validation, "
        "from recorded runs: held as noise by one binomial standard error (the lab's rule), by "
        "McNemar's test, and by McNemar's test with balanced accuracy's weights"
    )
    print(write_result("balanced_dips", rows, columns, notes, RESULTS))


if __name__ == "__main__":
    main()
