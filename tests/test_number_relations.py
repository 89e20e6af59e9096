"""Relations every row keeps among its prompt's numbers, and rule rows that keep them."""

from __future__ import annotations

import random
import re
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from postlab.tools.data.number_relations import MIN_RELATION_EVIDENCE, Dependent, dependents
from postlab.tools.data.number_rules import _candidates, _readings_agree, number_rules, redraw
from postlab.tools.data.recombination import folder_rules
from postlab.tools.tasks.catalog import Example


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"-?\d+", text)]


def sequences(count: int, seed: int = 0, shown_terms: int = 3) -> list[Example]:
    """Arithmetic sequences, rising and falling, asked for the term after those shown."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < count:
        start, step = rng.randint(1, 60), rng.choice([-1, 1]) * rng.randint(2, 12)
        terms = [start + step * i for i in range(shown_terms + 1)]
        if min(terms) >= 0:
            shown = ", ".join(map(str, terms[:-1]))
            rows.append(Example(prompt=f"What number comes next: {shown}?", answer=str(terms[-1])))
    return rows


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 10_000),
    st.lists(st.integers(-3, 3), min_size=2, max_size=2),
    st.integers(-20, 20),
)
def test_a_number_every_row_computes_from_the_others_is_found_and_others_are_not(
    seed, weights, constant
):
    rng = random.Random(seed)
    rows = []
    for _ in range(12):
        a, b, free = rng.randint(1, 90), rng.randint(1, 90), rng.randint(1, 90)
        rows.append((a, b, constant + weights[0] * a + weights[1] * b, free))
    found = dependents(rows)
    if any(weights):
        (relation,) = found
        assert relation.place == 2
        assert all(relation.value(row) == row[2] for row in rows)
    else:
        # A number the same in every row is drawn in its one-value range, not computed.
        assert found == ()


def test_a_relation_needs_rows_beyond_its_unknowns():
    rows = [(a, 3 * a + 1) for a in range(1, 3 + MIN_RELATION_EVIDENCE)]
    (relation,) = dependents(rows)
    assert relation.describe() == "number 2 = 3 × number 1 + 1"
    # One row fewer: a line through that many points is no evidence of one.
    assert dependents(rows[:-1]) == ()


def test_a_relation_counts_distinct_rows_of_the_numbers_it_relates():
    # Six distinct rows, but numbers 1 and 2 show only two pairs: any two points make a line.
    rows = [(2, 10, n) for n in (1, 3, 5)] + [(8, 40, n) for n in (2, 4, 6)]
    assert dependents(rows) == ()


def test_relations_read_as_written():
    two_steps = Dependent(2, Fraction(0), ((0, Fraction(-1)), (1, Fraction(2))))
    assert two_steps.describe() == "number 3 = 2 × number 2 − number 1"
    assert Dependent(1, Fraction(10), ((0, Fraction(-1)),)).describe() == "number 2 = 10 − number 1"
    negative = Dependent(1, Fraction(-3), ((0, Fraction(-1)),))
    assert negative.describe() == "number 2 = −number 1 − 3"


def test_redrawn_sequences_keep_their_equal_steps():
    rows = sequences(60)
    (rule,) = number_rules(rows)
    (text,) = folder_rules(rows).stats()["number_rules"]
    assert "number 3 = 2 × number 2 − number 1 in every row, kept" in text
    rng = random.Random(2)
    made = [redraw(rule, row, rng) for row in rule.rows for _ in range(5)]
    made = [m for m in made if m is not None]
    assert len(made) > 60
    # Drawn one by one within their ranges, most triples would not be sequences at all.
    assert len({tuple(_numbers(m.prompt)) for m in made}) > 40
    for example in made:
        a, b, c = _numbers(example.prompt)
        assert b - a == c - b
        assert example.answer == str(c + (c - b))


def test_a_total_the_rule_reads_stays_the_sum_of_parts_it_does_not():
    rng = random.Random(4)
    rows = []
    for _ in range(30):
        red, blue = rng.randint(2, 40), rng.randint(2, 40)
        taken = rng.randint(1, red + blue - 1)
        prompt = (f"A box holds {red} red and {blue} blue balls, {red + blue} in all. "
                  f"{taken} are taken out. How many are left?")  # fmt: skip
        rows.append(Example(prompt=prompt, answer=str(red + blue - taken)))
    rule = next(r for r in number_rules(rows) if r.operation.describe() == "number 3 − number 4")
    made = [redraw(rule, row, rng) for row in rule.rows for _ in range(5)]
    made = [m for m in made if m is not None]
    assert len(made) > 30
    for example in made:
        red, blue, total, taken = _numbers(example.prompt)
        assert total == red + blue and 0 < taken < total
        assert example.answer == str(total - taken)
    # The parts are drawn anew (within their rows' ranges), so the totals are new too.
    assert len({_numbers(m.prompt)[2] for m in made}) > 20


def test_numbers_drawn_apart_keep_no_relation():
    rng = random.Random(6)
    independent = []
    for _ in range(40):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        prompt = f"Tom has {a} pens and gets {b} more. How many now?"
        independent.append(Example(prompt=prompt, answer=str(a + b)))
    (rule,) = number_rules(independent)
    assert rule.bounds.dependents == ()


def test_rows_two_readings_explain_make_a_rule_when_the_readings_agree_on_kept_relations():
    # "4, 7, 10, 13" → 16 is number 4 + number 2 − number 1 and number 4 + number 3 − number 2:
    # no row tells them apart, and numbers that keep the equal steps never will.
    rows = sequences(60, seed=1, shown_terms=4)
    (rule,) = number_rules(rows)
    assert len(rule.bounds.dependents) == 2
    rng = random.Random(3)
    made = [redraw(rule, row, rng) for row in rule.rows for _ in range(5)]
    made = [m for m in made if m is not None]
    assert len(made) > 60
    for example in made:
        terms = _numbers(example.prompt)
        assert len({b - a for a, b in zip(terms, terms[1:], strict=False)}) == 1
        assert example.answer == str(terms[-1] + terms[1] - terms[0])
    # On numbers drawn apart the two readings differ: without the relations, no rule.
    shared = set.intersection(*(_candidates(row) for row in rule.rows))
    readings = frozenset(op for op in shared if op.then)
    assert rule.operation in readings and len(readings) == 2
    assert _readings_agree(rule, readings)
    loose = rule._replace(bounds=rule.bounds._replace(dependents=()))
    assert not _readings_agree(loose, readings)
