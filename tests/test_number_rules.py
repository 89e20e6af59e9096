"""Rules that compute a folder's answers from its prompts' numbers, and the rows they make."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from postlab.agents import data_engineer
from postlab.memory.store import open_memory
from postlab.records.hyper import Hyper
from postlab.records.run import RunOptions
from postlab.records.steps import Directive, Plan
from postlab.tools.data.number_rules import (
    MIN_RULE_FILLINGS,
    number_row,
    number_rules,
    redraw,
    rule_row_count,
)
from postlab.tools.data.recombination import recombined_rows
from postlab.tools.data.training_sets import load_training_set
from postlab.tools.tasks.catalog import Example

PEOPLE = ["Tom", "Ana", "Lee", "Sam", "Mia", "Raj"]
ITEMS = ["apples", "pens", "books", "coins"]


def word_problems(count: int, seed: int = 0) -> list[Example]:
    """Sums ("has … gets … more") and differences ("had … gave away"), as the held-out folder."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        who, what = rng.choice(PEOPLE), rng.choice(ITEMS)
        if index % 2:
            rows.append(
                Example(
                    prompt=f"{who} has {a} {what} and gets {b} more. How many {what} now?",
                    answer=str(a + b),
                )
            )
        else:
            a, b = max(a, b), min(a, b)
            rows.append(
                Example(
                    prompt=f"{who} had {a} {what} and gave away {b}. How many {what} are left?",
                    answer=f"{a - b} {what}",
                )
            )
    return rows


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def test_sums_and_differences_are_found_with_their_wording():
    rows = word_problems(40)
    rules = {rule.operation.describe(): rule for rule in number_rules(rows)}
    assert set(rules) == {"number 1 + number 2", "number 1 − number 2"}
    assert {"gets", "more"} <= rules["number 1 + number 2"].wording
    assert {"gave", "away", "left"} <= rules["number 1 − number 2"].wording
    assert rule_row_count(list(rules.values())) == 40


def test_a_wording_that_does_not_settle_the_operation_is_no_rule():
    # "Combine" means a sum in some rows and a product in others: the words cannot tell which.
    rows = [Example(prompt=f"Combine {a} and {b}.", answer=str(a + b)) for a, b in
            [(3, 9), (4, 11), (5, 12), (6, 13), (7, 15)]]  # fmt: skip
    rows += [Example(prompt=f"Combine {a} and {b}.", answer=str(a * b)) for a, b in
             [(3, 8), (4, 10), (5, 14), (6, 16), (7, 17)]]  # fmt: skip
    assert number_rules(rows) == []


def test_too_few_fillings_make_no_rule():
    rows = [
        Example(prompt=f"Add {a} to {b}.", answer=str(a + b))
        for a, b in [(3, 9), (4, 11), (5, 12)][: MIN_RULE_FILLINGS - 1]
    ]
    assert number_rules(rows) == []


def test_a_constant_factor_is_a_rule():
    rows = [Example(prompt=f"How many minutes are in {h} hours?", answer=str(60 * h))
            for h in (2, 3, 5, 7, 11)]  # fmt: skip
    (rule,) = number_rules(rows)
    assert rule.operation.describe() == "number 1 × 60"
    made = redraw(rule, rule.rows[0], random.Random(1))
    assert made is not None
    (hours,) = _numbers(made.prompt)
    assert made.answer == str(60 * hours)


def test_a_number_copied_into_the_answer_is_a_rule_that_keeps_its_answer_text():
    names = ["Ivan", "Olga", "Kai", "Ines", "Bo"]
    rows = [Example(prompt=f"Name and age as JSON: {n}, aged {a}.",
                    answer=f'{{"name": "{n}", "age": {a}}}')
            for n, a in zip(names, (68, 23, 41, 35, 52), strict=True)]  # fmt: skip
    (rule,) = number_rules(rows)
    assert rule.operation.describe() == "number 1, copied"
    made = redraw(rule, rule.rows[2], random.Random(0))
    (age,) = _numbers(made.prompt)
    assert made.answer == f'{{"name": "Kai", "age": {age}}}' and 23 <= age <= 68


def test_redrawn_numbers_keep_their_order_against_numbers_the_rule_does_not_read():
    # Largest minus smallest, always written largest first: the middle number must stay between.
    rng = random.Random(5)
    rows = []
    for _ in range(12):
        a, b, c = sorted(rng.sample(range(2, 90), 3), reverse=True)
        rows.append(Example(prompt=f"Of {a}, {b} and {c}, what is the largest minus the smallest?",
                            answer=str(a - c)))  # fmt: skip
    (rule,) = number_rules(rows)
    made = [redraw(rule, row, rng) for row in rule.rows for _ in range(10)]
    made = [m for m in made if m is not None]
    assert len(made) > 20
    for example in made:
        numbers = _numbers(example.prompt)
        assert example.answer == str(max(numbers) - min(numbers))


def test_two_wordings_of_one_operation_are_two_rules():
    rng = random.Random(2)
    pairs = [(rng.randint(2, 60), rng.randint(2, 60)) for _ in range(30)]
    rows = [Example(prompt=f"Tom has {a} pens and gets {b} more. How many pens now?",
                    answer=str(a + b)) for a, b in pairs[:10]]  # fmt: skip
    rows += [Example(prompt=f"What is {a} plus {b}?", answer=str(a + b)) for a, b in pairs[10:20]]
    rows += [Example(prompt=f"Tom had {max(a, b)} pens and gave away {min(a, b)}. How many left?",
                     answer=str(abs(a - b))) for a, b in pairs[20:]]  # fmt: skip
    described = [rule.operation.describe() for rule in number_rules(rows)]
    assert sorted(described) == ["number 1 + number 2"] * 2 + ["number 1 − number 2"]
    assert rule_row_count(number_rules(rows)) == 30


def test_numbers_inside_decimals_groups_words_and_ordinals_are_not_integers():
    row = number_row(Example(prompt="Tom is 3rd in a line of 10. How many are behind him?",
                             answer="7"))  # fmt: skip
    assert row is not None and row.numbers == (10,)
    for text in ("It costs 123.45 today.", "About 10,000 people.", "COVID-19 and x2 here."):
        assert number_row(Example(prompt=text, answer="1")) is None, text


def test_rows_that_are_no_arithmetic_are_left_alone():
    assert number_row(Example(prompt="Is 12 larger than 7?", answer="yes")) is None
    assert number_row(Example(prompt="Sort 3, 1, 2.", answer="1, 2, 3")) is None
    assert number_row(Example(prompt="Halve 3.", answer="1.5")) is None


def test_redrawn_differences_keep_their_order_and_answer_text():
    rows = word_problems(40)
    rule = next(r for r in number_rules(rows) if r.operation.kind == "difference")
    rng = random.Random(3)
    made = [redraw(rule, row, rng) for row in rule.rows for _ in range(5)]
    made = [m for m in made if m is not None]
    assert len(made) > 40
    for example in made:
        a, b = _numbers(example.prompt)
        assert a >= b
        what = example.prompt.split()[3]
        assert example.answer == f"{a - b} {what}"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_redrawn_sums_are_right_and_within_the_rows_ranges(seed):
    rows = word_problems(30, seed)
    rule = next(r for r in number_rules(rows) if r.operation.kind == "sum")
    low = min(min(_numbers(r.example.prompt)) for r in rule.rows)
    high = max(max(_numbers(r.example.prompt)) for r in rule.rows)
    rng = random.Random(seed)
    for row in rule.rows:
        made = redraw(rule, row, rng)
        if made is None:
            continue
        a, b = _numbers(made.prompt)
        assert made.answer == str(a + b)
        assert low <= a <= high and low <= b <= high
        # Everything but the numbers is the row's own wording.
        assert re.sub(r"\d+", "#", made.prompt) == re.sub(r"\d+", "#", row.example.prompt)


def two_step_problems(count: int, seed: int = 0) -> list[Example]:
    """Three wordings of two steps on three numbers, as the held-out two_step_small folder
    (on larger numbers)."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        who, what = rng.choice(PEOPLE), rng.choice(ITEMS)
        if index % 3 == 0:
            a, b = rng.randint(2, 40), rng.randint(2, 40)
            c = rng.randint(2, a + b)
            prompt = f"{who} has {a} {what}, gets {b} more and gives away {c}. How many now?"
            rows.append(Example(prompt=prompt, answer=str(a + b - c)))
        elif index % 3 == 1:
            a = rng.randint(4, 60)
            b, c = rng.randint(2, a), rng.randint(2, 40)
            prompt = f"{who} had {a} {what}, gave away {b} and got {c} more. How many now?"
            rows.append(Example(prompt=prompt, answer=str(a - b + c)))
        else:
            a, b, c = rng.randint(2, 9), rng.randint(2, 12), rng.randint(2, 30)
            prompt = f"{who} has {c} {what} and buys {a} bags of {b}. How many {what} now?"
            rows.append(Example(prompt=prompt, answer=f"{a * b + c} {what}"))
    return rows


def test_two_steps_over_three_numbers_are_rules_where_no_one_step_explains_the_rows():
    rows = two_step_problems(45)
    rules = {rule.operation.describe(): rule for rule in number_rules(rows)}
    assert set(rules) == {
        "(number 1 + number 2) − number 3",
        "(number 1 − number 2) + number 3",
        "(number 2 × number 3) + number 1",
    }
    assert {"gets", "gives"} <= rules["(number 1 + number 2) − number 3"].wording
    assert {"bags", "buys"} <= rules["(number 2 × number 3) + number 1"].wording
    assert rule_row_count(list(rules.values())) == 45


def test_one_function_read_many_ways_is_one_rule_named_in_the_prompts_order():
    # (a − b) − c and a − (b + c) are one function: one rule, read left to right.
    fillings = [(50, 3, 4), (40, 7, 9), (33, 2, 8), (61, 10, 11), (28, 5, 6)]
    rows = [Example(prompt=f"A box of {a}: Tom takes {b}, Ana takes {c}. Left?",
                    answer=str(a - b - c)) for a, b, c in fillings]  # fmt: skip
    assert [rule.operation.describe() for rule in number_rules(rows)] == [
        "(number 1 − number 2) − number 3"
    ]


def test_one_step_is_read_before_two_where_it_explains_the_rows():
    # The third number is a distractor that two steps also read ((a + b) × 1): the one step
    # a sum of the first two takes is the reading.
    fillings = [(12, 7), (20, 5), (31, 9), (14, 22), (8, 16)]
    rows = [Example(prompt=f"Tom has {a} pens and gets {b} more; 1 friend watches. Pens?",
                    answer=str(a + b)) for a, b in fillings]  # fmt: skip
    assert [rule.operation.describe() for rule in number_rules(rows)] == ["number 1 + number 2"]


# Derandomized: a few seeds in thousands draw rows whose numbers also fit one step by chance
# (30 + 14 − 28 = 30 − 14), which can leave a wording too few rows of its own to be a rule.
@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(0, 10_000))
def test_redrawn_two_step_rows_are_right_whole_and_within_the_rows_answers(seed):
    rows = two_step_problems(45, seed)
    rng = random.Random(seed)
    rules = number_rules(rows)
    assert len(rules) == 3
    for rule in rules:
        lowest = min(row.answer for row in rule.rows)
        for row in rule.rows:
            made = redraw(rule, row, rng)
            if made is None:
                continue
            a, b, c = _numbers(made.prompt)
            expected = {"gets": a + b - c, "gave": a - b + c, "bags": b * c + a}
            kind = next(word for word in expected if word in made.prompt)
            assert _numbers(made.answer) == [expected[kind]] and expected[kind] >= lowest
            assert re.sub(r"\d+", "#", made.answer) == re.sub(r"\d+", "#", row.example.answer)


def _answers_right(prompt: str, answer: str) -> bool:
    a, b = _numbers(prompt)
    expected = a + b if "gets" in prompt else a - b
    return _numbers(answer) == [expected]


def test_recombined_rows_of_a_number_folder_are_right_new_and_decontaminated():
    rows = word_problems(40)
    leaks = {"Tom", "Mia"}
    made, stats = recombined_rows(rows, 200, list, 0, lambda e: e.prompt.split()[0] in leaks)
    assert len(made) == 200 and stats["number_rule_rows"] == 40 and stats["rule_rows"] == 0
    assert any("number 1 − number 2" in rule for rule in stats["number_rules"])
    pairs = [(r["prompt"][0]["content"], r["completion"][0]["content"]) for r in made]
    assert len({prompt for prompt, _ in pairs}) == 200
    new = pairs[40:]
    assert all(_answers_right(prompt, answer) for prompt, answer in new)
    assert not any(prompt.split()[0] in leaks for prompt, _ in new)
    assert stats["contaminated"] > 0


def _folder_stretch(tmp_path: Path, model: Path, rows: list[Example], train: int, **plan):
    """A word-problem folder of `rows` (`train` to train on, then 10 validation rows, the rest
    test) and the state and directive of a stretch of SFT on it planned with `plan`."""
    folder = tmp_path / "word_problems"
    folder.mkdir()
    splits = (("train", rows[:train]), ("valid", rows[train : train + 10]))
    for name, part in (*splits, ("eval", rows[train + 10 :])):
        (folder / f"{name}.jsonl").write_text(
            "".join(json.dumps(e.model_dump()) + "\n" for e in part)
        )
    steps = plan.pop("max_steps")
    stretch = Plan(
        iteration=1, technique="sft_full", method="sft", init_checkpoint=str(model),
        hyper=Hyper(learning_rate=2e-5, max_steps=steps, batch_size=8), data_format="sft",
        data_seed=1, reason="r", **plan,
    )  # fmt: skip
    state = {"run_dir": str(tmp_path / "run"), "task_dir": str(folder),
             "run_options": RunOptions(), "trajectory": [], "plan": stretch}  # fmt: skip
    return state, Directive(agent="data_engineer", action="build_dataset", reason="r")


def test_the_data_engineer_counts_number_rule_rows_and_makes_rows_from_them(tmp_path, tiny_model):
    state, directive = _folder_stretch(
        tmp_path, tiny_model, word_problems(60), 40, max_steps=10, data_size=80
    )
    plan = state["plan"]
    memory = open_memory(tmp_path / "memory")
    card = data_engineer.build_dataset(state, directive, memory).update["datasets"][0]
    # Plain rows: the folder's 40, all under its two rules, fewer than the 80 asked for.
    assert (card.final_size, card.requested, card.recipe_stats["number_rule_rows"]) == (40, 80, 40)
    assert len(card.recipe_stats["number_rules"]) == 2
    state["plan"] = plan.model_copy(update={"iteration": 2, "data_recipe": "recombined"})
    card = data_engineer.build_dataset(state, directive, memory).update["datasets"][0]
    assert card.final_size == 80 and card.recipe_stats["recombined"] == 40
    made = load_training_set(card.path)
    pairs = [(r["prompt"][0]["content"], r["completion"][0]["content"]) for r in made]
    assert all(_answers_right(prompt, answer) for prompt, answer in pairs)


def test_a_stretch_of_rule_rows_weighs_every_folder_row_against_its_schedule(tmp_path, tiny_model):
    # 120 folder rows, stretches of 40 rows in a schedule of 240: more rows than one stretch
    # builds, so its share (20) is taken from all 120, not from the 40 a plain stretch draws.
    state, directive = _folder_stretch(
        tmp_path, tiny_model, word_problems(140, seed=3), 120,
        max_steps=5, data_size=40, data_recipe="recombined", schedule_steps=30,
    )  # fmt: skip
    plan = state["plan"]
    memory = open_memory(tmp_path / "memory")
    card = data_engineer.build_dataset(state, directive, memory).update["datasets"][0]
    stats = card.recipe_stats
    assert (card.final_size, stats["seed_rows"], stats["number_rule_rows"]) == (40, 120, 120)
    assert (stats["own_rows"], stats["recombined"]) == (20, 20)
    # A plain stretch of the same folder still trains on the 40 rows it asked for.
    state["plan"] = plan.model_copy(update={"data_recipe": "plain", "data_seed": 2})
    plain = data_engineer.build_dataset(state, directive, memory).update["datasets"][0]
    assert plain.final_size == 40


def test_a_stretch_of_a_longer_schedule_takes_its_share_of_the_folders_rows():
    # A schedule reading 800 rows, a stretch 200 of them: the folder's 40 rows appear in the
    # share they would have among 800 drawn at once (10), new rows fill the rest.
    rows = word_problems(40)
    made, stats = recombined_rows(rows, 200, list, 0, lambda e: False, schedule_rows=800)
    assert (len(made), stats["own_rows"], stats["recombined"]) == (200, 10, 190)
    own = {row.prompt for row in rows}
    assert sum(r["prompt"][0]["content"] in own for r in made) == 10
    # A stretch that is the whole schedule keeps every folder row.
    _, stats = recombined_rows(rows, 200, list, 0, lambda e: False, schedule_rows=200)
    assert stats["own_rows"] == 40
