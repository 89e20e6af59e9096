"""What every row of a number rule keeps among its prompt's numbers, so that numbers drawn anew
keep it too: each moving number's range, its order against the others, and exact relations.

"What number comes next: 4, 7, 10?" → "13": in every such row number 3 is 2 × number 2 − number 1
(the steps are equal). Drawn each within its own range, new numbers would ask "4, 9, 31", a
question no row asks, with the answer the rule computes for it: rows of another task. A number
that is the same affine function of the free numbers before it in every row of a rule is
computed from them instead of drawn ("A box holds 12 red and 8 blue balls, 20 in all" keeps its
total). The fit counts as evidence only with at least MIN_RELATION_EVIDENCE distinct rows of the
numbers it relates beyond the unknowns it solves for: with fewer, some function fits any rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

# Distinct rows (of the numbers a relation relates) it must hold for beyond its unknowns (a
# constant and a weight for each free number): k + 1 points always fit an affine function of k
# numbers, and each row beyond them is a check an unrelated number passes by chance at most as
# often as it repeats a value.
MIN_RELATION_EVIDENCE = 4


class Dependent(NamedTuple):
    """A number computed from others: `constant` plus each (place, weight) times its number."""

    place: int
    constant: Fraction
    weights: tuple[tuple[int, Fraction], ...]

    def value(self, numbers: Sequence[int]) -> Fraction:
        """What the number at `place` is, from the other numbers of a prompt."""
        return self.constant + sum(
            (weight * numbers[place] for place, weight in self.weights), Fraction(0)
        )

    def describe(self) -> str:
        """The relation in words, places counted from one."""
        terms = [(weight, f"{'' if abs(weight) == 1 else f'{abs(weight)} × '}number {place + 1}")
                 for place, weight in self.weights]  # fmt: skip
        if self.constant:
            terms.append((self.constant, str(abs(self.constant))))
        # Added terms first, so "2 × number 2 − number 1" and "10 − number 1" read as written.
        terms.sort(key=lambda term: term[0] < 0)
        text = ("−" if terms[0][0] < 0 else "") + terms[0][1]
        text += "".join(f" {'−' if weight < 0 else '+'} {term}" for weight, term in terms[1:])
        return f"number {self.place + 1} = {text}"


class Bounds(NamedTuple):
    """What a rule's rows show of their numbers: the range of each place a new row moves (the
    rule's own, and those computed from or into them), the orders every row kept between a
    moving place and another place ((p, q) → 1: p ≥ q, -1: p ≤ q), the answers' range and the
    places every row computes from the others."""

    low: dict[int, int]
    high: dict[int, int]
    orders: dict[tuple[int, int], int]
    answers: tuple[int, int]
    dependents: tuple[Dependent, ...] = ()


def bounds_of(
    numbers: Sequence[Sequence[int]], answers: Sequence[int], read: Sequence[int]
) -> Bounds:
    """What the rows `numbers` (with their `answers`) show of the numbers a rule reads at
    `read`, in its reading order."""
    # Over every place, read or not: a total the rule reads stays the sum of parts it does not.
    kept = dependents(numbers)
    computed = {dependent.place for dependent in kept}
    # Places drawn anew: the free ones the rule reads and those its read numbers are computed
    # from (a total's parts); every place computed from them moves too and is checked alike.
    drawn = {place for place in read if place not in computed} | {
        place for dependent in kept if dependent.place in read for place, _ in dependent.weights
    }
    moving = drawn | {d.place for d in kept if any(p in drawn for p, _ in d.weights)}
    # The rule's own places first, in its order: with no relation the draws are as they were.
    moved = [*read, *sorted(moving - set(read))]
    low = {p: min(row[p] for row in numbers) for p in moved}
    high = {p: max(row[p] for row in numbers) for p in moved}
    orders = {}
    for p in moved:
        for q in range(len(numbers[0])):
            if q == p:
                continue
            if all(row[p] >= row[q] for row in numbers):
                orders[p, q] = 1
            elif all(row[p] <= row[q] for row in numbers):
                orders[p, q] = -1
    return Bounds(low, high, orders, (min(answers), max(answers)), kept)


def completed(numbers: Sequence[int], kept: Sequence[Dependent]) -> list[Fraction]:
    """`numbers` with every place a relation of `kept` computes computed from the free ones."""
    filled = [Fraction(value) for value in numbers]
    for dependent in kept:
        filled[dependent.place] = dependent.value(filled)
    return filled


def drawn_numbers(bounds: Bounds, numbers: Sequence[int], rng: random.Random) -> list[int] | None:
    """`numbers` with every place `bounds` ranges over drawn anew (those a relation computes,
    computed), or None when a computed one is not whole or leaves its range, or an order
    breaks."""
    computed = {dependent.place for dependent in bounds.dependents}
    fresh = list(numbers)
    for place, low in bounds.low.items():
        if place not in computed:
            fresh[place] = rng.randint(low, bounds.high[place])
    filled = completed(fresh, bounds.dependents)
    for place in computed:
        value, low = filled[place], bounds.low.get(place)
        # A place with no range did not move: its value is the row's own.
        if value.denominator != 1 or (low is not None and not low <= value <= bounds.high[place]):
            return None
    drawn = [int(value) for value in filled]
    if any((drawn[p] - drawn[q]) * sign < 0 for (p, q), sign in bounds.orders.items()):
        return None
    return drawn


def dependents(numbers: Sequence[Sequence[int]]) -> tuple[Dependent, ...]:
    """Which places of the rows `numbers` (each row's prompt numbers, as many in each) every row
    computes from the free places before it, in place order; a place the same in every row is
    drawn in its range of one value, not listed."""
    distinct = list(dict.fromkeys(tuple(row) for row in numbers))
    free: list[int] = []
    found: list[Dependent] = []
    for place in range(len(distinct[0]) if distinct else 0):
        relation = _affine(distinct, place, free)
        if relation is None or not relation.weights:
            free.append(place)
        else:
            found.append(relation)
    return tuple(found)


def _affine(rows: list[tuple[int, ...]], place: int, free: list[int]) -> Dependent | None:
    """The affine function of `free` that gives `place` in every row, or None where none does
    or too few distinct rows of those numbers show it."""
    related = {tuple(row[column] for column in (*free, place)) for row in rows}
    if not free or len(related) < len(free) + 1 + MIN_RELATION_EVIDENCE:
        return None
    system = [[Fraction(1), *(Fraction(value) for value in values)] for values in sorted(related)]
    solution = _solve(system, len(free) + 1)
    if solution is None:
        return None
    constant, *weights = solution
    kept = tuple((column, weight) for column, weight in zip(free, weights, strict=True) if weight)
    return Dependent(place, constant, kept)


def _solve(system: list[list[Fraction]], unknowns: int) -> list[Fraction] | None:
    """One exact solution of an augmented linear system (free unknowns at zero), or None where
    the rows contradict each other."""
    rows = [list(row) for row in system]
    pivots: list[int] = []
    top = 0
    for column in range(unknowns):
        pivot = next((index for index in range(top, len(rows)) if rows[index][column]), None)
        if pivot is None:
            continue
        rows[top], rows[pivot] = rows[pivot], rows[top]
        lead = rows[top][column]
        rows[top] = [value / lead for value in rows[top]]
        for index, row in enumerate(rows):
            if index != top and row[column]:
                scale = row[column]
                rows[index] = [
                    value - scale * pivot_value
                    for value, pivot_value in zip(row, rows[top], strict=True)
                ]
        pivots.append(column)
        top += 1
    if any(row[unknowns] for row in rows[top:]):
        return None
    solution = [Fraction(0)] * unknowns
    for index, column in enumerate(pivots):
        solution[column] = rows[index][unknowns]
    return solution
