"""The bundled tasks: seeded generators of prompts whose answers are computed, not written."""

from __future__ import annotations

import random

from postlab.tools.tasks.model import Example, Generator
from postlab.tools.tasks.verifiers import Metric


def _addition(lo: int, hi: int) -> Generator:
    def generate(rng: random.Random) -> Example:
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        return Example(prompt=f"What is {a} + {b}? Reply with the number only.", answer=str(a + b))

    return generate


# (larger unit, smaller unit, factor); only integer results are ever asked for.
_UNIT_PAIRS = [
    ("km", "m", 1000),
    ("m", "cm", 100),
    ("kg", "g", 1000),
    ("h", "min", 60),
    ("min", "s", 60),
    ("L", "mL", 1000),
]


def _unit_conversion(rng: random.Random) -> Example:
    big, small, factor = rng.choice(_UNIT_PAIRS)
    k = rng.randint(1, 250)
    # "How many X are in N Y" puts a number inside every 8-word window, so n-gram decontamination
    # sees items that differ; "Convert N Y to X" left "Y to X reply with the number only" as a
    # per-unit template shared by under 10% of eval items, which would flag whole unit pairs.
    if rng.random() < 0.5:
        prompt, answer = f"How many {small} are in {k} {big}?", k * factor
    else:
        prompt, answer = f"How many {big} are in {k * factor} {small}?", k
    return Example(prompt=f"{prompt} Reply with the number only.", answer=str(answer))


def _sort_list(rng: random.Random) -> Example:
    numbers = rng.sample(range(100), rng.randint(3, 5))
    shown = ", ".join(str(x) for x in numbers)
    return Example(
        prompt=(
            f"Sort these numbers in ascending order: {shown}. "
            "Reply with the sorted numbers separated by commas."
        ),
        answer=", ".join(str(x) for x in sorted(numbers)),
    )


def _answer_format(rng: random.Random) -> Example:
    kind = rng.randrange(3)
    if kind == 2:
        n = rng.randint(1, 999)
        return Example(
            prompt=f"Is {n} even? Reply with yes or no only.",
            answer="yes" if n % 2 == 0 else "no",
        )
    a, b = sorted(rng.sample(range(10, 100), 2))
    # The order is a function of the pair, so "31 or 58" and "58 or 31" never split one question
    # across the train and eval splits.
    if (a * 31 + b) % 2:
        a, b = b, a
    word, pick = ("larger", max) if kind == 0 else ("smaller", min)
    return Example(
        prompt=f"Which is {word}, {a} or {b}? Reply with the number only.",
        answer=str(pick(a, b)),
    )


_LETTERS = "ABCD"


def _multiple_choice_arith(rng: random.Random) -> Example:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    total = a + b
    # Options depend only on (a, b): the same sum always renders the same prompt, so the exact
    # prompt filter keeps a reshuffled copy of an eval question out of training.
    local = random.Random(a * 1000 + b)
    offsets = local.sample([-11, -10, -9, -2, -1, 1, 2, 9, 10, 11], 3)
    options = [total, *(total + d for d in offsets)]
    local.shuffle(options)
    lines = "\n".join(
        f"({letter}) {value}" for letter, value in zip(_LETTERS, options, strict=True)
    )
    return Example(
        prompt=f"What is {a} + {b}?\n{lines}\nReply with the letter of the correct option only.",
        answer=_LETTERS[options.index(total)],
    )


# Token limits leave room for a short sentence, so a chatty reply can still score leniently.
BUNDLED: dict[str, tuple[str, Metric, int, Generator]] = {
    "addition_2d": (
        "Add two 2-digit numbers; reply with the number only.",
        "numeric",
        24,
        _addition(10, 99),
    ),
    "addition_3d": (
        "Add two 3-digit numbers; reply with the number only.",
        "numeric",
        24,
        _addition(100, 999),
    ),
    "unit_conversion": (
        "Convert between metric/time units with integer results; reply with the number only.",
        "numeric",
        24,
        _unit_conversion,
    ),
    "sort_list": (
        "Sort 3-5 numbers ascending; reply with them comma-separated.",
        "exact",
        32,
        _sort_list,
    ),
    "answer_format": (
        "Compare two numbers or judge parity, replying in exactly the requested format "
        "(a bare number, or lowercase yes/no).",
        "exact",
        16,
        _answer_format,
    ),
    "multiple_choice_arith": (
        "Pick the correct sum among options (A)-(D); reply with the letter only.",
        "choice",
        16,
        _multiple_choice_arith,
    ),
}
