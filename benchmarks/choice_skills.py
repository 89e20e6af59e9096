"""multiple_choice_arith's skills apart: what plain SFT teaches a model that answers one letter.

Naive SFT and the lab both end multiple_choice_arith at chance, every question given one letter.
This trains plain full SFT on the task's rows with shares of them rewritten to ask for one skill
each, then scores each skill on validation questions:

- letter: the task itself (the sum's option, by its letter);
- value: the sum's option by its value ("Reply with the value of the correct option only.");
- lookup: the letter of an option named by its value (no arithmetic);
- value_letter: the value, then its letter, in one reply ("141 (C)").

    python benchmarks/choice_skills.py --mix letter=0.34,value=0.33,lookup=0.33
    python benchmarks/choice_skills.py --mix letter=0.5,value_letter=0.5

A rewritten row keeps its question and options; only the instruction line changes.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import Counter

from datasets import Dataset, load_from_disk
from lab_vs_naive import BATCH, sft_base_on
from measure import RESULTS, scratch_dir, write_result

from postlab.tools.data.training_sets import build_training_set, example_row
from postlab.tools.evaluation.scoring import generate
from postlab.tools.tasks.catalog import Example, load_task
from postlab.tools.tasks.verifiers import verify

TASK = "multiple_choice_arith"
INSTRUCTION = "Reply with the letter of the correct option only."
_OPTION = re.compile(r"^\(([A-Z])\) (.+)$", re.M)
SKILLS = ("letter", "value", "lookup", "value_letter")


def option_values(prompt: str) -> dict[str, str]:
    """A question's options, by letter: {"A": "141", ...}."""
    return dict(_OPTION.findall(prompt))


def ask(skill: str, prompt: str, answer: str, rng: random.Random) -> tuple[str, str]:
    """The question rewritten to ask for one skill, and that skill's reference answer."""
    options = option_values(prompt)
    if skill == "letter":
        return prompt, answer
    if skill == "value":
        return prompt.replace(INSTRUCTION, "Reply with the value of the correct option only."), (
            options[answer]
        )
    if skill == "lookup":
        named = rng.choice(sorted(options))
        return prompt.replace(
            INSTRUCTION, f"Reply with the letter of the option {options[named]} only."
        ), named
    return prompt.replace(
        INSTRUCTION, "Reply with the correct option's value, then its letter."
    ), f"{options[answer]} ({answer})"


def _mix(text: str) -> dict[str, float]:
    shares = {}
    for part in text.split(","):
        skill, _, share = part.partition("=")
        if skill not in SKILLS:
            raise SystemExit(f"unknown skill {skill!r}; expected one of {', '.join(SKILLS)}")
        try:
            shares[skill] = float(share)
        except ValueError:
            raise SystemExit(f"--mix wants skill=share pairs, got {part!r}") from None
        if not 0.01 <= shares[skill] <= 1:
            raise SystemExit(f"{skill}'s share must lie between 0.01 and 1, got {share}")
    return shares


def main() -> None:
    """Train once on the mix and print each skill's validation accuracy (and write results/)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", default="letter=0.34,value=0.33,lookup=0.33")
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--limit", type=int, default=100, help="validation questions per skill")
    args = parser.parse_args()
    mix = _mix(args.mix)
    task = load_task(TASK)
    with scratch_dir("postlab-choice-skills-") as out:
        rows = args.steps * BATCH
        pool = load_from_disk(
            build_training_set(task, "sft", rows, seed=0, out_dir=out / "pool").path
        )
        # Every hundred rows hold each skill at its share, so no stretch of training lacks one.
        order = [s for s in mix for _ in range(round(100 * mix[s]))]
        rng = random.Random(0)
        data = []
        for i, row in enumerate(pool):
            prompt, answer = ask(
                order[i % len(order)],
                row["prompt"][0]["content"],
                row["completion"][0]["content"],
                rng,
            )
            data.append(example_row(Example(prompt=prompt, answer=answer), "sft"))
        started = time.monotonic()
        result = sft_base_on(task.name, Dataset.from_list(data), out, args.steps)
        if result.status != "ok":
            raise SystemExit(f"training failed: {result.failure}")
        row: dict = {
            "mix": args.mix,
            "steps": args.steps,
            "train_s": round(time.monotonic() - started),
        }
        examples = task.validation_examples()[: args.limit]
        for skill in SKILLS:
            rng = random.Random(1)
            asked = [ask(skill, e.prompt, e.answer, rng) for e in examples]
            replies = generate(result.checkpoint, [p for p, _ in asked], max_new_tokens=12)
            replies = [reply.strip() for reply in replies]
            right = sum(
                verify("exact", reply, answer).strict
                for reply, (_, answer) in zip(replies, asked, strict=True)
            )
            row[skill] = round(right / len(asked), 3)
            if skill == "letter":
                commonest = Counter(replies).most_common(1)[0]
                row["letter_commonest"] = f"{commonest[0]} ({commonest[1] / len(replies):.0%})"
        print(json.dumps(row))
        name = "choice_skills_" + "_".join(f"{s}{mix[s]:g}" for s in mix)
        notes = (
            f"{args.steps} steps of plain full SFT on {TASK} rows asking for each skill at its "
            f"share; each skill scored (exact reply) on the first {args.limit} validation questions"
        )
        columns = ["mix", "steps", *SKILLS, "letter_commonest"]
        write_result(name, [row], columns, notes, RESULTS)


if __name__ == "__main__":
    main()
