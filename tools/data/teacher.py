"""Synthetic rows from a teacher model, Self-Instruct style: new questions in the task's format.

The teacher sees a few training examples and writes a new question with its answer; the answer is
kept only when the task's verifier accepts its form and the teacher, asked the question afresh,
agrees with itself. New questions are deduplicated and decontaminated like every training row.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from postlab.tools.data.training_sets import example_row
from postlab.tools.evaluation.generation import complete, load_for_generation
from postlab.tools.tasks.catalog import Example, Task, normalize_prompt

# (prompts, samples, temperature, seed, max_new_tokens) → completions per prompt.
Generate = Callable[[list[str], int, float, int, int], list[list[str]]]
# Training examples shown to the teacher per request (Self-Instruct shows a handful).
SHOTS = 4
# Fresh answers drawn to check the teacher's own answer, and how many must agree with it.
AGREEMENT_SAMPLES = 3
AGREEMENT_NEEDED = 2
PROPOSAL_TEMPERATURE = 1.0
ANSWER_TEMPERATURE = 0.7
# Room for a question and its answer in one completion.
PROPOSAL_TOKENS = 96
_PROPOSAL = re.compile(r"Question:\s*(?P<q>.+?)\s*\n\s*Answer:\s*(?P<a>.+)", re.DOTALL)


def load_teacher(model_path: str | Path) -> Generate:
    """A Generate backed by a local checkpoint (loaded once)."""
    model, tokenizer = load_for_generation(model_path)

    def generate(
        prompts: list[str], samples: int, temperature: float, seed: int, max_new_tokens: int
    ) -> list[list[str]]:
        return complete(
            model,
            tokenizer,
            prompts,
            max_new_tokens,
            samples=samples,
            temperature=temperature,
            seed=seed,
        )

    return generate


def proposal_prompt(shots: list[Example]) -> str:
    """The Self-Instruct request: numbered examples of the task, then room for one more."""
    blocks = [
        f"Example {i}\nQuestion: {shot.prompt}\nAnswer: {shot.answer}"
        for i, shot in enumerate(shots, 1)
    ]
    return (
        "Here are examples of one task.\n\n"
        + "\n\n".join(blocks)
        + f"\n\nWrite Example {len(shots) + 1}: a new question of the same kind, different from "
        "the ones above, and its correct answer, in exactly the same format "
        "(a 'Question:' line, then an 'Answer:' line)."
    )


def parse_proposal(text: str) -> Example | None:
    """The question and answer a teacher wrote, or None when it did not follow the format."""
    match = _PROPOSAL.search(text)
    if not match:
        return None
    question = match["q"].strip()
    answer = match["a"].strip().splitlines()[0].strip()
    if not question or not answer:
        return None
    return Example(prompt=question, answer=answer)


def teacher_rows(
    task: Task,
    seeds: list[Example],
    generate: Generate,
    new_rows: int,
    seed: int,
    contaminates: Callable[[Example], bool],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Plain rows of the seed examples plus up to `new_rows` verified teacher questions."""
    rng = random.Random(seed)
    shots = [rng.sample(seeds, min(SHOTS, len(seeds))) for _ in range(new_rows)]
    proposals = generate(
        [proposal_prompt(s) for s in shots], 1, PROPOSAL_TEMPERATURE, seed, PROPOSAL_TOKENS
    )
    seen = {normalize_prompt(example.prompt) for example in seeds}
    candidates: list[Example] = []
    counts = dict.fromkeys(
        ("unparsed", "duplicates", "contaminated", "bad_form", "disagreed", "kept"), 0
    )
    for texts in proposals:
        proposal = parse_proposal(texts[0]) if texts else None
        if proposal is None:
            counts["unparsed"] += 1
        elif normalize_prompt(proposal.prompt) in seen:
            counts["duplicates"] += 1
        elif contaminates(proposal):
            counts["contaminated"] += 1
        elif not task.verify(proposal.answer, proposal.answer).strict:
            counts["bad_form"] += 1
        else:
            seen.add(normalize_prompt(proposal.prompt))
            candidates.append(proposal)
    answers = (
        generate(
            [c.prompt for c in candidates],
            AGREEMENT_SAMPLES,
            ANSWER_TEMPERATURE,
            seed + 1,
            task.max_new_tokens,
        )
        if candidates
        else []
    )
    kept: list[Example] = []
    for candidate, fresh in zip(candidates, answers, strict=True):
        agreeing = sum(task.verify(text, candidate.answer).strict for text in fresh)
        if agreeing >= AGREEMENT_NEEDED:
            kept.append(candidate)
        else:
            counts["disagreed"] += 1
    counts["kept"] = len(kept)
    rows = [example_row(example, "sft") for example in [*seeds, *kept]]
    stats = {"seed_rows": len(seeds), "teacher_requests": new_rows, **counts}
    stats["teacher_examples"] = [f"{e.prompt} → {e.answer}" for e in kept[:5]]
    return rows, stats
