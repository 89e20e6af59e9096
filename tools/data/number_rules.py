"""Rules that compute a folder's answers from its prompts' numbers, found in the rows themselves.

"Tom had 54 books and gave away 36. How many books are left?" → "18": the answer is the first
number less the second. Where every row worded alike agrees on one such rule, new numbers make
a new question whose answer the rule computes: fresh rows for a folder too small to train on
without repeating itself (the numeric twin of recombination.py's copy rules; Andreas 2020's
premise that what shares a context is interchangeable, here the numbers of one wording).

A rule is an operation on the prompt's numbers at fixed places (a sum, a difference, a
product, an exact quotient of two of them, or one of them times a constant) that:
- alone explains at least MIN_RULE_FILLINGS rows with different numbers, and
- holds for every row whose prompt has as many numbers and all the words those rows share
  (its wording): a wording that does not settle the operation is no rule.
New numbers stay within what the rule's rows show: each place's range, the order between the two
places when every row kept one, and the answers' range (no "gave away 30 of 5").
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

from postlab.tools.tasks.catalog import Example

# An integer in running text (a decimal point or a digit group makes it no integer here).
_INTEGER = re.compile(r"(?<![\d.,])-?\d+(?![\d.,]\d)")
_WORD = re.compile(r"[A-Za-z]+")
# Rows a rule must explain alone, with different numbers, before it is one (as copy rules).
MIN_RULE_FILLINGS = 4
# Most numbers a prompt may hold for its pairs to be tried (pairs grow with the square).
MAX_PROMPT_NUMBERS = 6
# Draws per new row asked for before a rule's space is taken as spent.
TRIES_PER_ROW = 20

OPERATIONS = ("sum", "difference", "product", "quotient", "scaled")


class Operation(NamedTuple):
    """What a rule computes: `kind` of the numbers at `first` and `second` (`scaled`: the number
    at `first` times `factor`), in a prompt holding `count` numbers."""

    kind: str
    count: int
    first: int
    second: int = -1
    factor: Fraction = Fraction(1)

    def apply(self, numbers: Sequence[int]) -> Fraction | None:
        """The answer for these prompt numbers (None where a quotient is undefined)."""
        a = Fraction(numbers[self.first])
        if self.kind == "scaled":
            return a * self.factor
        b = Fraction(numbers[self.second])
        if self.kind == "sum":
            return a + b
        if self.kind == "difference":
            return a - b
        if self.kind == "product":
            return a * b
        return a / b if b else None

    def describe(self) -> str:
        """The operation in words, places counted from one."""
        a, b = f"number {self.first + 1}", f"number {self.second + 1}"
        if self.kind == "scaled" and self.factor == 1:
            return f"{a}, copied"
        return {
            "sum": f"{a} + {b}",
            "difference": f"{a} − {b}",
            "product": f"{a} × {b}",
            "quotient": f"{a} ÷ {b}",
            "scaled": f"{a} × {self.factor}",
        }[self.kind]


class NumberRow(NamedTuple):
    """A row a rule explains: its prompt's integers and their spans, and its answer's."""

    example: Example
    numbers: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    answer: int
    answer_span: tuple[int, int]


class Bounds(NamedTuple):
    """What a rule's rows show of their numbers: each read place's range, the order between
    the two places (1: first ≥ second in every row, -1: ≤, 0: either) and the answers' range."""

    low: dict[int, int]
    high: dict[int, int]
    order: int
    answers: tuple[int, int]


class NumberRule(NamedTuple):
    """An operation, the words its rows share, the rows it holds for and their bounds."""

    operation: Operation
    wording: frozenset[str]
    rows: list[NumberRow]
    bounds: Bounds


def number_row(example: Example) -> NumberRow | None:
    """A row's integers, when its prompt holds some and its answer is exactly one integer."""
    found = list(_INTEGER.finditer(example.prompt))
    answers = list(_INTEGER.finditer(example.answer))
    if not found or len(found) > MAX_PROMPT_NUMBERS or len(answers) != 1:
        return None
    return NumberRow(
        example,
        tuple(int(m.group()) for m in found),
        tuple(m.span() for m in found),
        int(answers[0].group()),
        answers[0].span(),
    )


def _candidates(row: NumberRow) -> set[Operation]:
    """Every operation that gives this row's answer from its prompt's numbers."""
    count, answer = len(row.numbers), Fraction(row.answer)
    found: set[Operation] = set()
    for first in range(count):
        a = row.numbers[first]
        if a:
            found.add(Operation("scaled", count, first, factor=answer / a))
        for second in range(count):
            if second == first:
                continue
            for kind in ("sum", "difference", "product", "quotient"):
                if kind in ("sum", "product") and second < first:
                    continue  # the same operation as the pair the other way round
                operation = Operation(kind, count, first, second)
                if operation.apply(row.numbers) == answer:
                    found.add(operation)
    return found


def _words(example: Example) -> frozenset[str]:
    return frozenset(word.lower() for word in _WORD.findall(example.prompt))


def _bounds(operation: Operation, rows: Sequence[NumberRow]) -> Bounds:
    places = [operation.first] if operation.second < 0 else [operation.first, operation.second]
    low = {p: min(row.numbers[p] for row in rows) for p in places}
    high = {p: max(row.numbers[p] for row in rows) for p in places}
    order = 0
    if len(places) == 2:
        pairs = [(row.numbers[places[0]], row.numbers[places[1]]) for row in rows]
        order = 1 if all(a >= b for a, b in pairs) else -1 if all(a <= b for a, b in pairs) else 0
    answers = [row.answer for row in rows]
    return Bounds(low, high, order, (min(answers), max(answers)))


def number_rules(examples: Sequence[Example]) -> list[NumberRule]:
    """The rules that compute answers of `examples` from their prompts' numbers."""
    rows = [row for row in map(number_row, examples) if row is not None]
    explained: dict[Operation, list[NumberRow]] = defaultdict(list)
    candidates = {id(row): _candidates(row) for row in rows}
    for row in rows:
        # A scaling is a rule only where it is the sole reading: "12 and 3 → 36" is a product.
        found = candidates[id(row)]
        plain = {op for op in found if op.kind != "scaled"}
        if len(plain) == 1:
            explained[next(iter(plain))].append(row)
        elif not plain and len(found) == 1:
            explained[next(iter(found))].append(row)
    rules: list[NumberRule] = []
    for operation, alone in explained.items():
        if len({row.numbers for row in alone}) < MIN_RULE_FILLINGS:
            continue
        wording = frozenset.intersection(*(_words(row.example) for row in alone))
        worded = [
            row
            for row in rows
            if len(row.numbers) == operation.count and wording <= _words(row.example)
        ]
        if all(operation in candidates[id(row)] for row in worded):
            rules.append(NumberRule(operation, wording, worded, _bounds(operation, worded)))
    # In one order whatever the rows' order, so reasons and cards read alike stretch to stretch.
    return sorted(rules, key=lambda rule: rule.operation.describe())


def rule_row_count(rules: Sequence[NumberRule]) -> int:
    """Rows some rule holds for, each counted once."""
    return len({id(row.example) for rule in rules for row in rule.rows})


def _replace(text: str, spans: Sequence[tuple[int, int]], values: Sequence[int]) -> str:
    pieces, last = [], 0
    for (start, end), value in sorted(zip(spans, values, strict=True)):
        pieces += [text[last:start], str(value)]
        last = end
    return "".join([*pieces, text[last:]])


def redraw(rule: NumberRule, row: NumberRow, rng: random.Random) -> Example | None:
    """`row` with new numbers where the rule reads them and the answer the rule gives, or None
    when the draw leaves what the rule's rows show (a bound, the order, a whole answer)."""
    bounds = rule.bounds
    numbers = list(row.numbers)
    for place, low in bounds.low.items():
        numbers[place] = rng.randint(low, bounds.high[place])
    operation = rule.operation
    if bounds.order and operation.second >= 0:
        a, b = numbers[operation.first], numbers[operation.second]
        if (a - b) * bounds.order < 0:
            return None
    value = operation.apply(numbers)
    if value is None or value.denominator != 1:
        return None
    answer = int(value)
    if not bounds.answers[0] <= answer <= bounds.answers[1]:
        return None
    prompt = _replace(row.example.prompt, row.spans, numbers)
    return Example(prompt=prompt, answer=_replace(row.example.answer, [row.answer_span], [answer]))
