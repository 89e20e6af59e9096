"""Rows the model already knows: a recall task learns its answer format on facts it holds.

Facts a model does not hold are learned late in fine-tuning, and once learned they raise its
tendency to answer with facts it does not have; training only on examples it already knows
loses nothing and avoids that (Gekhman et al. 2024, arXiv 2405.05904, who call an
example known when the model's greedy or sampled answers give it). A task folder of recall
questions (open answers: not numbers, not a small label set, not words copied from the prompt)
whose base model already says many of its answers, only inside longer replies ("The capital of
Austria is Vienna."), needs its answer format taught, not new facts. Measured on the held-out
capitals folder (benchmarks/known_rows.py): the base model's greedy replies hold 24 of the 50
test capitals; 240 steps of plain SFT on all 132 usable rows answer 2 of them, and fine-tuned
models give other countries' capitals (Austria → "Budapest").
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from postlab.tools.evaluation.generation import completions_from
from postlab.tools.evaluation.misses import label_set
from postlab.tools.io.atomic import write_json_atomic
from postlab.tools.tasks.catalog import Example
from postlab.tools.tasks.verifiers import contains_answer, parse_number

# What the lab cites for the recipe.
EVIDENCE = (
    "Gekhman et al. 2024 (2405.05904): examples that bring new facts are learned late and then "
    "raise hallucination; dropping them costs nothing"
)
# A folder is a recall task when at least this share of its rows ask for a fact in words.
RECALL_MIN_SHARE = 0.5
# Samples beside the greedy reply, and their temperature: a fact the model gives only
# sometimes still counts as known (the paper's MaybeKnown, the category that trained best).
KNOWN_SAMPLES = 4
KNOWN_TEMPERATURE = 0.7
# Tokens a reply may take to say the answer in its own words.
REPLY_TOKENS = 32
# Fewest known rows a run trains on alone (two batches); with fewer it keeps every row.
MIN_KNOWN_ROWS = 16
# Where a run keeps the prompts it found known, in its data folder: asked of the model once.
KNOWN_ROWS_FILE = "known-rows.json"
_WORD = re.compile(r"\w+")


def recall_rows(examples: Sequence[Example]) -> int:
    """How many rows ask for a fact in words: an answer with letters, not a number, not one
    of a small set of labels, and not made of the prompt's own words."""
    if label_set([example.answer for example in examples]):
        return 0
    return sum(1 for example in examples if _recalled(example))


def _recalled(example: Example) -> bool:
    answer = example.answer.strip()
    if parse_number(answer) is not None or not re.search(r"[A-Za-z]", answer):
        return False
    prompt_words = {word.lower() for word in _WORD.findall(example.prompt)}
    return not {word.lower() for word in _WORD.findall(answer)} <= prompt_words


def recall_task(recall: int, rows: int) -> bool:
    """Whether a folder whose `rows` hold `recall` recall questions is a recall task."""
    return rows > 0 and recall >= RECALL_MIN_SHARE * rows


class KnownRows(NamedTuple):
    """The rows whose answers the model already gives, how many rows were asked, and the
    seconds spent asking (0 when read back from an earlier stretch)."""

    known: list[Example]
    asked: int
    seconds: float = 0.0

    def stats(self) -> dict[str, int | float]:
        """What a data card counts of it."""
        counts: dict[str, int | float] = {
            "known_rows": len(self.known),
            "rows_asked_of_the_base_model": self.asked,
        }
        if self.seconds:
            counts["sampling_seconds"] = self.seconds  # rounded once, with the recipe's own
        return counts


def known_rows(
    examples: Sequence[Example],
    model_path: str | Path,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> KnownRows:
    """The examples whose reference answer the model's greedy reply, or one of a few sampled
    ones, contains; `on_progress` hears (replies done, replies in all) after each batch."""
    started = time.monotonic()
    prompts = [example.prompt for example in examples]
    total = len(prompts) * (1 + KNOWN_SAMPLES)

    def replies_done(first: int, per_prompt: int) -> Callable[[int, int], None] | None:
        if on_progress is None:
            return None
        return lambda done, _prompts: on_progress(first + done * per_prompt, total)

    greedy = completions_from(model_path, prompts, REPLY_TOKENS, on_batch=replies_done(0, 1))
    sampled = completions_from(
        model_path,
        prompts,
        REPLY_TOKENS,
        samples=KNOWN_SAMPLES,
        temperature=KNOWN_TEMPERATURE,
        seed=seed,
        on_batch=replies_done(len(prompts), KNOWN_SAMPLES),
    )
    known = [
        example
        for example, first, more in zip(examples, greedy, sampled, strict=True)
        if any(contains_answer(reply, example.answer) for reply in [*first, *more])
    ]
    return KnownRows(known, len(examples), time.monotonic() - started)


def known_rows_once(
    folder: Path,
    examples: Callable[[], Sequence[Example]],
    model_path: str | Path,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> KnownRows:
    """`known_rows` of the `examples` the callable gives, asked of the model once per run:
    later stretches read the known rows back from `folder` and gather no examples."""
    saved = Path(folder) / KNOWN_ROWS_FILE
    if saved.is_file():
        record = json.loads(saved.read_text(encoding="utf-8"))
        known = [Example.model_validate(row) for row in record["known"]]
        return KnownRows(known, int(record["asked"]))
    found = known_rows(examples(), model_path, seed, on_progress)
    saved.parent.mkdir(parents=True, exist_ok=True)
    rows = [example.model_dump() for example in found.known]
    write_json_atomic(saved, {"known": rows, "asked": found.asked})
    return found
