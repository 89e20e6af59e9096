"""Checkpoint writes: `save_pretrained` straight into a run folder against through memory.

    python benchmarks/checkpoint_write.py [--repeats N] [--model NAME] [--out DIR]

The lab's own `save_checkpoint` writes the model and tokenizer each time, both ways in turn
(interleaved, and every checkpoint kept until the end, as a run keeps its iterations'), so a
noisy machine slows both alike; the table gives medians and the ratio.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from measure import RESULTS, median, scratch_dir, timed, write_result

from postlab.tools.io.through_memory import THROUGH_MEMORY_ENV, memory_room
from postlab.tools.models.resolution import resolve_model, save_checkpoint


def main() -> None:
    """Time both ways of writing a checkpoint and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--model", default=None, help="a model name or path (default: SmolLM2)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(args.model).path
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    nbytes = model.get_memory_footprint()
    if nbytes > memory_room():
        # Not a failure of the suite: such a machine has only the one way of writing.
        print("no memory-backed folder with room for this model here: nothing to compare")
        return
    ways = {"straight": "0", "through memory": "1"}
    samples: dict[str, list[float]] = {way: [] for way in ways}
    with scratch_dir("postlab-checkpoint-write-") as scratch:
        for repeat in range(args.repeats):
            for way, switch in ways.items():
                os.environ[THROUGH_MEMORY_ENV] = switch
                target = scratch / f"{repeat}-{way.replace(' ', '-')}" / "checkpoint"
                samples[way] += timed(lambda t=target: save_checkpoint(model, tokenizer, t), 1)
    straight = median(samples["straight"])
    rows = [
        {
            "way": way,
            "median_s": median(seconds),
            "runs_s": " ".join(f"{s:.2f}" for s in seconds),
            "ratio_to_straight": median(seconds) / straight,
        }
        for way, seconds in samples.items()
    ]
    model_name = args.model or "the default model"
    notes = (
        f"{args.repeats} interleaved saves each of {nbytes / 1e6:.0f} MB ({model_name}), model "
        "and tokenizer; medians. Through memory: written into a tmpfs folder, then copied into "
        "the run folder by the kernel (`sendfile`)."
    )
    columns = ["way", "median_s", "runs_s", "ratio_to_straight"]
    print(write_result("checkpoint_write", rows, columns, notes, args.out))


if __name__ == "__main__":
    main()
