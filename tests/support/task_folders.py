"""Small task folders written for a test."""

import json
import random
from pathlib import Path


def sums_folder(folder: Path, count: int) -> Path:
    """A task folder of sums in one wording, `count` training rows of numbers drawn from 2 to 98."""
    folder.mkdir(exist_ok=True)
    pairs = [(a, b) for a in range(2, 99) for b in range(2, 99)]

    def rows(chosen):
        return "\n".join(
            json.dumps(
                {"prompt": f"Tom has {a} pens and gets {b} more. How many?", "answer": a + b}
            )
            for a, b in chosen
        )

    (folder / "train.jsonl").write_text(rows(random.Random(0).sample(pairs[:-20], count)))
    (folder / "valid.jsonl").write_text(rows(pairs[-20:-10]))
    (folder / "eval.jsonl").write_text(rows(pairs[-10:]))
    (folder / "task.json").write_text(json.dumps({"metric": "numeric"}))
    return folder
