"""Rules that compute a folder's answers from its prompts' numbers, found in the rows themselves.

"Tom had 54 books and gave away 36. How many books are left?" → "18": the answer is the first
number less the second. Where every row worded alike agrees on one such rule, new numbers make
a new question whose answer the rule computes: fresh rows for a folder too small to train on
without repeating itself (the numeric twin of recombination.py's copy rules; Andreas 2020's
premise that what shares a context is interchangeable, here the numbers of one wording).

A rule is an operation on the prompt's numbers at fixed places (a sum, a difference, a
product, an exact quotient of two of them, or, in a prompt of one number, that number times a
constant; where no such step explains a row, two steps: one of those on two numbers, then on
its result and a third, "Tom has 12 apples, gets 7 more and gives away 5" → (12 + 7) − 5) that:
- alone explains at least MIN_RULE_FILLINGS rows with different numbers, and
- holds for every row whose prompt has as many numbers and all the words those rows share
  (its wording): a wording that does not settle the operation is no rule.
New numbers stay within what the rule's rows show: each place's range, its order against every
other number of the prompt where every row kept one, the relations every row keeps among its
numbers (number_relations.py: a sequence's equal steps) and the answers' range (no "gave away
30 of 5"). Rows that two or more two-step readings explain alike, and no rule covers, make a
rule of the first reading only where all of them agree on numbers that keep those relations
("4, 7, 10, 13" → 16: number 4 + number 2 − number 1, or number 4 + number 3 − number 2).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from fractions import Fraction
from itertools import permutations
from typing import NamedTuple

from postlab.tools.data.number_relations import Bounds, bounds_of, completed, drawn_numbers
from postlab.tools.tasks.catalog import Example

# An integer in running text: not part of a decimal, a digit group ("10,000"), a word or an
# ordinal ("3rd", "x2"); a minus sign counts only where no word runs into it ("COVID-19").
_INTEGER = re.compile(r"(?<![\w.,])(?<![A-Za-z]-)-?\d+(?![.,]?\d|[A-Za-z_])")
_WORD = re.compile(r"[A-Za-z]+")
# Rows a rule must explain alone, with different fillings, before it is one: two rows of a
# two-way choice agree by chance half the time, four only one time in eight (copy rules too).
MIN_RULE_FILLINGS = 4
# Most numbers a prompt may hold for its pairs to be tried (pairs grow with the square).
MAX_PROMPT_NUMBERS = 6
# Most numbers a prompt may hold for two steps over three of them to be tried (with the cube).
MAX_TWO_STEP_NUMBERS = 4
# One step on two numbers, and what a second step may do with its result and a third number
# ("subtracted_from": the third less the result; a sum or product needs no reversed twin, and
# the third divided by the result, "30 shared among 2 boys and 3 girls", is not read).
STEP_KINDS = ("sum", "difference", "product", "quotient")
SECOND_STEP_KINDS = (*STEP_KINDS, "subtracted_from")
# Numbers two-step readings are evaluated at to tell which of them are one function
# ((a + b) − c and (a − c) + b): distinct primes, so no quotient divides by zero (numbers a
# relation computes from them may be zero: a reading undefined there agrees with nothing).
_PROBES = ((7, 11, 13, 17), (29, 5, 3, 31))
_SYMBOLS = {"sum": "+", "difference": "−", "product": "×", "quotient": "÷"}
# A word in at least this share of the rows one operation alone explains belongs to a wording
# of it: where those rows fail the check as one, they are grouped by such words, so two
# wordings of a sum are two rules.
WORDING_SHARE = 0.25


def _step(kind: str, a: Fraction, b: Fraction) -> Fraction | None:
    if kind == "sum":
        return a + b
    if kind == "difference":
        return a - b
    if kind == "product":
        return a * b
    if kind == "subtracted_from":
        return b - a
    return a / b if b else None


class Operation(NamedTuple):
    """What a rule computes: `kind` of the numbers at `first` and `second` (`scaled`: the number
    at `first` times `factor`), then, for two steps, `then` of that and the number at `third`,
    in a prompt holding `count` numbers."""

    kind: str
    count: int
    first: int
    second: int = -1
    factor: Fraction = Fraction(1)
    then: str = ""
    third: int = -1

    @property
    def places(self) -> tuple[int, ...]:
        """The places of the numbers it reads, in the order it reads them."""
        return tuple(place for place in (self.first, self.second, self.third) if place >= 0)

    def apply(self, numbers: Sequence[int]) -> Fraction | None:
        """The answer for these prompt numbers (None where a quotient is undefined)."""
        a = Fraction(numbers[self.first])
        if self.kind == "scaled":
            return a * self.factor
        value = _step(self.kind, a, Fraction(numbers[self.second]))
        if value is None or not self.then:
            return value
        return _step(self.then, value, Fraction(numbers[self.third]))

    def describe(self) -> str:
        """The operation in words, places counted from one."""
        a, b = f"number {self.first + 1}", f"number {self.second + 1}"
        if self.kind == "scaled":
            return f"{a}, copied" if self.factor == 1 else f"{a} × {self.factor}"
        first_step = f"{a} {_SYMBOLS[self.kind]} {b}"
        if not self.then:
            return first_step
        c = f"number {self.third + 1}"
        if self.then == "subtracted_from":
            return f"{c} − ({first_step})"
        return f"({first_step}) {_SYMBOLS[self.then]} {c}"


class NumberRow(NamedTuple):
    """A row a rule explains: its prompt's integers and their spans, and its answer's."""

    example: Example
    numbers: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    answer: int
    answer_span: tuple[int, int]


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
    """Every operation that gives this row's answer from its prompt's numbers (two-step ones
    each once: of the readings that compute the same function, the one whose places sort
    first)."""
    count, answer = len(row.numbers), Fraction(row.answer)
    found: set[Operation] = set()
    for first in range(count):
        a = row.numbers[first]
        if a:
            found.add(Operation("scaled", count, first, factor=answer / a))
    for first, second in permutations(range(count), 2):
        for kind in STEP_KINDS:
            if kind in ("sum", "product") and second < first:
                continue  # the same operation as the pair the other way round
            operation = Operation(kind, count, first, second)
            if operation.apply(row.numbers) == answer:
                found.add(operation)
    if count < 3 or count > MAX_TWO_STEP_NUMBERS:
        return found
    # One function, many readings: the one whose places sort first stands for them all, so
    # every row names it alike ((a + b) − c, not (a − c) + b).
    by_function: dict[tuple[Fraction | None, ...], Operation] = {}
    for first, second, third in permutations(range(count), 3):
        for kind in STEP_KINDS:
            if kind in ("sum", "product") and second < first:
                continue
            for then in SECOND_STEP_KINDS:
                operation = Operation(kind, count, first, second, then=then, third=third)
                if operation.apply(row.numbers) != answer:
                    continue
                function = tuple(operation.apply(probe[:count]) for probe in _PROBES)
                known = by_function.get(function)
                if known is None or _reading_order(operation) < _reading_order(known):
                    by_function[function] = operation
    return found | set(by_function.values())


def _reading_order(operation: Operation) -> tuple:
    return (
        operation.places,
        STEP_KINDS.index(operation.kind),
        SECOND_STEP_KINDS.index(operation.then),
    )


def _words(example: Example) -> frozenset[str]:
    return frozenset(word.lower() for word in _WORD.findall(example.prompt))


def number_rules(examples: Sequence[Example]) -> list[NumberRule]:
    """The rules that compute answers of `examples` from their prompts' numbers."""
    rows = [row for row in map(number_row, examples) if row is not None]
    explained: dict[Operation, list[NumberRow]] = defaultdict(list)
    # Rows two or more two-step readings explain, by those readings.
    undecided: dict[frozenset[Operation], list[NumberRow]] = defaultdict(list)
    candidates = {id(row): _candidates(row) for row in rows}
    for row in rows:
        # The simplest reading explains a row, and only when it is the sole one of its kind:
        # one step before two, and a scaling where nothing else does ("12 and 3 → 36" is a
        # product).
        found = candidates[id(row)]
        one_step = {op for op in found if op.kind != "scaled" and not op.then}
        two_steps = {op for op in found if op.then}
        for readings in (one_step, two_steps, found):
            if readings:
                if len(readings) == 1:
                    explained[next(iter(readings))].append(row)
                elif readings is two_steps:
                    undecided[frozenset(readings)].append(row)
                break
    rules = _rules(explained, rows, candidates)
    covered = {id(row) for rule in rules for row in rule.rows}
    # Without a relation the readings of one row never agree on the probes (_candidates keeps
    # one reading per function on them), so word problems make no rule here.
    for readings, group in undecided.items():
        rest = [row for row in group if id(row) not in covered]
        first = min(readings, key=_reading_order)
        for rule in _rules({first: rest}, rows, candidates):
            if _readings_agree(rule, readings):
                rules.append(rule)
                covered |= {id(row) for row in rule.rows}
    # In one order whatever the rows' order, so reasons and cards read alike stretch to stretch.
    return sorted(rules, key=lambda rule: (rule.operation.describe(), sorted(rule.wording)))


def _rules(
    explained: dict[Operation, list[NumberRow]],
    rows: list[NumberRow],
    candidates: dict[int, set[Operation]],
) -> list[NumberRule]:
    """The rules the rows each operation alone explains make, checked against `rows`."""
    rules: list[NumberRule] = []
    for operation, alone in explained.items():
        if not alone:
            continue
        whole = _checked_rule(operation, alone, rows, candidates)
        # Rows one wording shares fail the check together when another wording of the same
        # operation shares few words with them: then each wording is tried alone.
        checked = [whole] if whole else [_checked_rule(operation, g, rows, candidates)
                                         for g in _by_wording(alone)]  # fmt: skip
        rules.extend(rule for rule in checked if rule is not None)
    return rules


def _readings_agree(rule: NumberRule, readings: frozenset[Operation]) -> bool:
    """Whether every reading of the rule's rows gives its answer on new numbers that keep the
    rows' relations: then which one computes the new rows does not matter. ("4, 7, 10, 13" →
    16 is number 4 + number 2 − number 1 and number 4 + number 3 − number 2; with the steps
    kept equal they are one function. On numbers drawn apart they are not.)"""
    kept = rule.bounds.dependents
    computed = {dependent.place for dependent in kept}
    free = [place for place in range(rule.operation.count) if place not in computed]
    for probe in _PROBES:
        if len(free) > len(probe):
            return False
        numbers = [0] * rule.operation.count
        for place, value in zip(free, probe[: len(free)], strict=True):
            numbers[place] = value
        values = {reading.apply(completed(numbers, kept)) for reading in readings}
        if len(values) > 1 or None in values:
            return False
    return True


def _by_wording(rows: list[NumberRow]) -> list[list[NumberRow]]:
    """Rows one operation explains, grouped by the words at least WORDING_SHARE of them use."""
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        for word in _words(row.example):
            counts[word] += 1
    common = {word for word, count in counts.items() if count >= WORDING_SHARE * len(rows)}
    groups: dict[frozenset[str], list[NumberRow]] = defaultdict(list)
    for row in rows:
        groups[_words(row.example) & common].append(row)
    return list(groups.values())


def _checked_rule(
    operation: Operation,
    alone: list[NumberRow],
    rows: list[NumberRow],
    candidates: dict[int, set[Operation]],
) -> NumberRule | None:
    """The rule `alone` makes, when its rows have enough fillings and every row of `rows`
    worded like them agrees with the operation."""
    if len({row.numbers for row in alone}) < MIN_RULE_FILLINGS:
        return None
    wording = frozenset.intersection(*(_words(row.example) for row in alone))
    worded = [
        row
        for row in rows
        if len(row.numbers) == operation.count and wording <= _words(row.example)
    ]
    if not all(operation in candidates[id(row)] for row in worded):
        return None
    return NumberRule(
        operation,
        wording,
        worded,
        bounds_of(
            [row.numbers for row in worded], [row.answer for row in worded], operation.places
        ),
    )


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
    """`row` with new numbers where the rule reads them (those every row computes from others
    computed alike) and the answer the rule gives, or None when the draw leaves what the rule's
    rows show (a bound, the order, a whole number, a whole answer)."""
    numbers = drawn_numbers(rule.bounds, row.numbers, rng)
    if numbers is None:
        return None
    value = rule.operation.apply(numbers)
    if value is None or value.denominator != 1:
        return None
    answer = int(value)
    if not rule.bounds.answers[0] <= answer <= rule.bounds.answers[1]:
        return None
    prompt = _replace(row.example.prompt, row.spans, numbers)
    return Example(prompt=prompt, answer=_replace(row.example.answer, [row.answer_span], [answer]))
