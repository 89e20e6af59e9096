"""The held-out task folders the lab is checked on load as task folders, keep test apart from
training, and say what their answers should be."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import pytest

from postlab.tools.data.known_rows import recall_rows
from postlab.tools.data.number_rules import number_rules
from postlab.tools.data.training_sets import usable_examples
from postlab.tools.tasks.folders import load_task_dir

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout" / "make_tasks.py"
# An option of a four-option question: "(C) hammer".
OPTION_LINE = re.compile(r"^\(([A-D])\) (\w+)$", re.M)


def _make_tasks():
    spec = importlib.util.spec_from_file_location("make_tasks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _written(tmp_path, name: str):
    """make_tasks.py, and the one folder `name` it wrote under tmp_path, loaded as a task."""
    made = _make_tasks()
    getattr(made, name)(tmp_path)
    return made, load_task_dir(tmp_path / name)


def _kind_of(made) -> dict[str, str]:
    """Each word of make_tasks.py's kinds, and its kind."""
    return {word: kind for kind, words in made.KINDS.items() for word in words}


def _every_example(task) -> list:
    """A folder's training and test examples."""
    return [*task.train_examples(10**6, seed=0), *task.test_examples()]


def test_every_held_out_folder_loads_with_test_apart_from_training(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["make_tasks.py", str(tmp_path)])
    _make_tasks().main()
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    names = {folder.name for folder in folders}
    assert {"word_problems", "word_problems_500", "two_step_small"} <= names
    assert len(folders) == 22
    for folder in folders:
        task = load_task_dir(folder)
        # The folder's own training file holds no test item (the task would drop it silently).
        assert task.train_eval_copies == 0, folder.name
        assert task.test_examples() and task.validation_examples(), folder.name


@pytest.mark.parametrize(
    ("name", "validation", "training"), [("word_problems", 30, 169), ("word_problems_500", 78, 439)]
)
def test_word_problems_answers_are_the_sums_and_differences_asked(
    tmp_path, name, validation, training
):
    _, task = _written(tmp_path, name)
    assert task.metric == "numeric" and task.validation_lent
    # Validation lent from the training rows, 50 test items, none lost to a leak; what is left
    # to train on: fewer rows than a stretch reads (320), or more but fewer than six (1,920).
    assert (len(task.validation_examples()), len(task.test_examples())) == (validation, 50)
    assert len(usable_examples(task)) == training
    for example in _every_example(task):
        a, b = (int(n) for n in re.findall(r"\d+", example.prompt))
        expected = a + b if "more" in example.prompt else a - b
        assert int(example.answer) == expected >= 0


def test_two_step_answers_take_both_steps_on_small_numbers(tmp_path):
    _, task = _written(tmp_path, "two_step_small")
    assert task.metric == "numeric" and task.validation_lent
    for example in _every_example(task):
        numbers = [int(n) for n in re.findall(r"\d+", example.prompt)]
        assert len(numbers) == 3 and max(numbers[:2]) <= 9, example.prompt
        first, second, third = numbers
        if "bags" in example.prompt:
            expected = first + second * third
        elif "gets" in example.prompt:
            expected = first + second - third
        else:
            expected = first - second + third
        assert int(example.answer) == expected >= 0


def test_continents_test_countries_that_training_never_names(tmp_path):
    made, task = _written(tmp_path, "continents")
    assert task.validation_lent and len(task.test_examples()) == 70
    where = {
        name.replace("_", " "): continent
        for continent, names in made.CONTINENTS.items()
        for name in names.split()
    }

    def country(prompt: str) -> str:
        # The longest name the prompt holds: "South Sudan" holds "Sudan", "Nigeria" "Niger".
        named = [name for name in where if re.search(rf"\b{re.escape(name)}\b", prompt)]
        return max(named, key=len)

    train, test = task.train_examples(10**6, seed=0), task.test_examples()
    tested = {country(example.prompt) for example in test}
    assert len(tested) == 70 and not tested & {country(example.prompt) for example in train}
    for example in [*train, *test]:
        assert where[country(example.prompt)] == example.answer, example.prompt


def test_weekdays_answers_count_the_days_from_the_day_named(tmp_path):
    made, task = _written(tmp_path, "weekdays")
    assert len(task.test_examples()) == 100 and task.validation_lent
    for example in _every_example(task):
        day = next(d for d in made.DAYS if d in example.prompt.split(".")[0].split(",")[0])
        n = int(re.search(r"(\d+) days", example.prompt).group(1))
        step = -n if ("ago" in example.prompt or "earlier" in example.prompt) else n
        assert made.DAYS[(made.DAYS.index(day) + step) % 7] == example.answer, example.prompt


def test_capitals_asks_test_about_countries_training_never_names(tmp_path):
    _, task = _written(tmp_path, "capitals")
    assert len(task.test_examples()) == 50 and task.validation_lent
    capitals = {example.answer for example in task.test_examples()}
    trained = {example.answer for example in task.train_examples(10**6, seed=0)}
    assert not capitals & trained
    # Rows ask for a fact in words, but for a capital named as its country ("Luxembourg"):
    # the survey reads the folder as a recall task.
    usable = usable_examples(task)
    named_alike = [e for e in usable if e.answer.split()[0] in e.prompt]
    assert recall_rows(usable) == len(usable) - len(named_alike) == 129


def test_word_count_answers_count_the_quoted_words(tmp_path):
    _, task = _written(tmp_path, "word_count")
    assert task.metric == "numeric" and len(task.test_examples()) == 100
    for example in _every_example(task):
        phrase = re.search(r"'([^']*)'", example.prompt).group(1)
        assert int(example.answer) == len(phrase.split()) <= 7


def _numeric_folder(tmp_path, name: str) -> tuple[list, list]:
    """A numeric held-out folder of 100 test items: its usable training rows, and those with
    test's."""
    _, task = _written(tmp_path, name)
    assert task.metric == "numeric" and len(task.test_examples()) == 100
    usable = usable_examples(task)
    return usable, [*usable, *task.test_examples()]


def test_digit_sum_answers_add_up_the_digits_and_no_number_rule_reads_them(tmp_path):
    usable, every = _numeric_folder(tmp_path, "digit_sum")
    for example in every:
        (number,) = re.findall(r"\d+", example.prompt)
        assert int(example.answer) == sum(int(digit) for digit in number)
    # A function of one number's digits: no arithmetic of the prompt's numbers computes it.
    assert number_rules(usable) == []


def test_object_colors_tests_things_training_never_names_on_balanced_labels(tmp_path):
    made, task = _written(tmp_path, "object_colors")
    color_of = {
        thing.replace("_", " "): color
        for color, things in made.OBJECT_COLORS.items()
        for thing in things.split()
    }

    def thing(prompt: str) -> str:
        # The longest name the prompt holds ("orange juice" holds "orange"), the list of
        # colours one wording offers left out.
        asked = prompt.split(":")[0] if "Typical" in prompt else prompt
        return max((name for name in color_of if name in asked), key=len)

    train, test = task.train_examples(10**6, seed=0), task.test_examples()
    assert not {thing(e.prompt) for e in test} & {thing(e.prompt) for e in train}
    assert Counter(e.answer for e in test) == dict.fromkeys(made.OBJECT_COLORS, 12)
    for example in [*train, *test]:
        assert color_of[thing(example.prompt)] == example.answer, example.prompt


def test_sequence_next_asks_the_next_term_and_its_rule_rows_stay_sequences(tmp_path):
    usable, every = _numeric_folder(tmp_path, "sequence_next")
    for example in every:
        terms = [int(n) for n in re.findall(r"\d+", example.prompt)]
        steps = {b - a for a, b in zip(terms, terms[1:], strict=False)}
        assert len(steps) == 1 and int(example.answer) == terms[-1] + steps.pop()
    # The three-term rows' rule computes number 3 − (number 1 − number 2) for any numbers; its
    # new rows are sequences only because they keep number 3 = 2 × number 2 − number 1 (and
    # the four-term rows' rule keeps both later terms).
    three, four = sorted(number_rules(usable), key=lambda rule: rule.operation.count)
    assert [d.describe() for d in three.bounds.dependents] == ["number 3 = 2 × number 2 − number 1"]
    assert [d.describe() for d in four.bounds.dependents] == [
        "number 3 = 2 × number 2 − number 1",
        "number 4 = 3 × number 2 − 2 × number 1",
    ]


def test_antonyms_test_words_that_training_never_names(tmp_path):
    made, task = _written(tmp_path, "antonyms")
    opposites = {}
    for pair in made.ANTONYMS.split("|"):
        first, second = pair.split()
        opposites.setdefault(first, second)
        opposites.setdefault(second, first)

    def word(prompt: str) -> str:
        return re.search(r"(?:of '?|antonym of )([a-z]+)", prompt).group(1)

    train, test = task.train_examples(10**6, seed=0), task.test_examples()
    assert len(test) == 60
    named = {w for e in train for w in (word(e.prompt), e.answer)}
    assert not named & {w for e in test for w in (word(e.prompt), e.answer)}
    for example in [*train, *test]:
        assert opposites[word(example.prompt)] == example.answer, example.prompt


def test_date_format_answers_rewrite_the_date_asked(tmp_path):
    made, task = _written(tmp_path, "date_format")
    assert task.metric == "exact" and len(task.test_examples()) == 100
    for example in _every_example(task):
        if iso := re.search(r"(\d{4})-(\d{2})-(\d{2})", example.prompt):
            year, month, day = iso.groups()
            assert example.answer == f"{day}/{month}/{year}", example.prompt
        else:
            day, month, year = re.search(r"(\d+) (\w+) (\d{4})", example.prompt).groups()
            number = made.MONTHS.index(month) + 1
            assert example.answer == f"{year}-{number:02d}-{int(day):02d}", example.prompt


def test_choice_category_tests_words_training_never_shows(tmp_path):
    made, task = _written(tmp_path, "choice_category")
    assert task.metric == "choice" and len(task.test_examples()) == 92
    kind_of = _kind_of(made)

    def right_word(example) -> str:
        word = dict(OPTION_LINE.findall(example.prompt))[example.answer]
        assert kind_of[word] in example.prompt
        # Exactly one option is of the kind asked.
        kinds = [kind_of[w] for _, w in OPTION_LINE.findall(example.prompt)]
        assert kinds.count(kind_of[word]) == 1, example.prompt
        return word

    train, test = task.train_examples(10**6, seed=0), task.test_examples()
    trained_words = {w for example in train for _, w in OPTION_LINE.findall(example.prompt)}
    tested = {right_word(example) for example in test}
    assert len(tested) == 46 and not tested & trained_words
    assert all(right_word(example) for example in train)


def test_odd_one_out_asks_about_words_training_never_shows(tmp_path):
    made, task = _written(tmp_path, "odd_one_out")
    train, test = task.train_examples(10**6, seed=0), task.test_examples()
    # 368 training rows, 55 of them lent to validation; 92 test items.
    assert task.metric == "choice" and (len(train), len(test)) == (313, 92)
    kind_of = _kind_of(made)

    def words_of(example) -> list[str]:
        letters = dict(OPTION_LINE.findall(example.prompt))
        kinds = [kind_of[word] for word in letters.values()]
        # The answer is the one option whose kind the other three do not share.
        odd = kind_of[letters[example.answer]]
        assert kinds.count(odd) == 1 and len(set(kinds)) == 2, example.prompt
        return list(letters.values())

    trained = {word for example in train for word in words_of(example)}
    tested = {word for example in test for word in words_of(example)}
    assert not tested & trained
    # Every letter answers about a quarter of the questions: no one letter is a shortcut.
    letters = [example.answer for example in [*train, *test]]
    assert all(0.2 < letters.count(letter) / len(letters) < 0.3 for letter in "ABCD")


def test_compare_numbers_answers_the_comparison_asked_on_pairs_training_never_asks(tmp_path):
    made, task = _written(tmp_path, "compare_numbers")
    train, test = task.train_examples(10**6, seed=0), task.test_examples()
    question = re.compile(r"^Is (\d+) (greater|less) than (\d+)\? Answer yes or no\.$")

    def pair_of(example) -> frozenset[int]:
        a, relation, b = question.fullmatch(example.prompt).groups()
        holds = int(a) > int(b) if relation == "greater" else int(a) < int(b)
        assert example.answer == ("yes" if holds else "no"), example.prompt
        return frozenset((int(a), int(b)))

    # No test pair is asked in training, in either order or either relation.
    assert not {pair_of(e) for e in test} & {pair_of(e) for e in train}
    assert Counter(e.answer for e in test) == {"yes": 50, "no": 50}
    # Close pairs are the hard ones: most pairs share at least their hundreds digit.
    close = [e for e in [*train, *test] if len({n // 100 for n in pair_of(e)}) == 1]
    assert len(close) > len([*train, *test]) / 2
    assert task.metric == "exact" and len(train) + len(task.validation_examples()) == 400
    # The 3,000-row copy asks the same test and never a test pair in training either.
    made.compare_numbers(tmp_path, "compare_numbers_3000", 3000)
    more = load_task_dir(tmp_path / "compare_numbers_3000")
    assert [e.prompt for e in more.test_examples()] == [e.prompt for e in test]
    rows = [*more.train_examples(10**6, seed=0), *more.validation_examples()]
    assert len(rows) == 3000 and not {pair_of(e) for e in rows} & {pair_of(e) for e in test}
