"""Building, decontaminating, saving and reloading TRL training sets."""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets as hf_datasets
import pytest

from postlab.records.artifacts import DatasetCard
from postlab.tools.data.training_sets import (
    DatasetError,
    build_training_set,
    held_out_index,
    load_training_set,
    read_card,
)
from postlab.tools.tasks.catalog import (
    Example,
    Task,
    bundled_task_names,
    load_task,
    normalize_prompt,
)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _dir_task(tmp_path: Path, train: list[dict], eval_rows: list[dict]) -> Task:
    folder = tmp_path / "task"
    folder.mkdir()
    _write_jsonl(folder / "train.jsonl", train)
    _write_jsonl(folder / "eval.jsonl", eval_rows)
    # A shipped validation split, so every training row stays for these training-set tests.
    _write_jsonl(folder / "valid.jsonl", [_reverse("quixotic")])
    return load_task(task_dir=folder)


# Longer than 8 words, so a pure-template 8-gram is shared by every eval and training item.
_TEMPLATE = "Think it through, then reply with the reversed word only and nothing else."


def _reverse(word: str) -> dict:
    return {
        "prompt": f"Reverse the word '{word}'. {_TEMPLATE}",
        "answer": word[::-1],
    }


EVAL_WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "candle", "garden"]
TRAIN_WORDS = [
    "orange", "forest", "pebble", "thunder", "lion", "violin", "lantern", "meadow", "bridge",
    "castle", "mirror", "rocket", "silver", "window", "planet", "harbor", "island", "jacket",
]  # fmt: skip


def _no_leftovers(parent: Path, keep: set[str]) -> None:
    assert {p.name for p in parent.iterdir()} == keep


def _accounting(card: DatasetCard) -> None:
    assert card.collected == card.duplicates_removed + card.contaminated_removed + card.final_size


def test_build_sft(tmp_path: Path) -> None:
    task = load_task()
    out = tmp_path / "sets" / "sft"
    card = build_training_set(task, "sft", 64, seed=3, out_dir=out)
    assert card.format == "sft"
    assert card.task == "addition_2d"
    assert card.source == "generator"
    assert card.requested == card.final_size == 64
    assert card.path == str(out.resolve())
    assert card.columns == ["prompt", "completion"]
    _accounting(card)
    data = load_training_set(out)
    assert data.column_names == ["prompt", "completion"]
    assert len(data) == 64
    row = data[0]
    assert row["prompt"][0]["role"] == "user"
    assert row["completion"][0]["role"] == "assistant"
    assert len(row["prompt"]) == len(row["completion"]) == 1
    # The saved pairs are correct: the completion is the task's own strict answer.
    for row in data:
        prompt, completion = row["prompt"][0]["content"], row["completion"][0]["content"]
        a, b = (int(x) for x in prompt.split("?")[0].removeprefix("What is ").split(" + "))
        assert completion == str(a + b)
    assert card.sample == data.select(range(2)).to_list()
    _no_leftovers(out.parent, {"sft"})


def test_build_grpo(tmp_path: Path) -> None:
    task = load_task("sort_list")
    card = build_training_set(task, "grpo", 40, seed=0, out_dir=tmp_path / "g")
    data = load_training_set(tmp_path / "g")
    assert card.columns == data.column_names == ["prompt", "answer"]
    assert len(data) == 40
    eval_keys = {normalize_prompt(ex.prompt) for ex in task.test_examples()}
    for row in data:
        assert [m["role"] for m in row["prompt"]] == ["user"]
        assert normalize_prompt(row["prompt"][0]["content"]) not in eval_keys
        assert task.reward(row["answer"], row["answer"]) == 1.0


def test_card_round_trips(tmp_path: Path) -> None:
    card = build_training_set(load_task(), "grpo", 16, seed=1, out_dir=tmp_path / "d")
    assert read_card(tmp_path / "d") == card
    assert read_card(tmp_path / "d" / "card.json") == card
    raw = json.loads((tmp_path / "d" / "card.json").read_text())
    assert raw["final_size"] == 16 and raw["format"] == "grpo"


def test_same_seed_same_set(tmp_path: Path) -> None:
    task = load_task("unit_conversion")
    build_training_set(task, "grpo", 30, seed=5, out_dir=tmp_path / "a")
    build_training_set(task, "grpo", 30, seed=5, out_dir=tmp_path / "b")
    build_training_set(task, "grpo", 30, seed=6, out_dir=tmp_path / "c")
    a, b, c = (load_training_set(tmp_path / x).to_list() for x in "abc")
    assert a == b
    assert a != c


def test_template_ngrams_do_not_flag_bundled_addition(tmp_path: Path) -> None:
    card = build_training_set(load_task("addition_2d"), "grpo", 300, seed=0, out_dir=tmp_path / "x")
    assert card.contaminated_removed == 0
    assert card.final_size == card.requested == 300
    assert card.template_ngrams_ignored > 0
    _accounting(card)


@pytest.mark.parametrize("name", bundled_task_names())
def test_bundled_tasks_are_barely_flagged(tmp_path: Path, name: str) -> None:
    card = build_training_set(load_task(name), "grpo", 300, seed=0, out_dir=tmp_path / name)
    assert card.final_size == 300
    assert card.contaminated_removed <= 0.02 * card.collected
    _accounting(card)


def test_duplicates_are_counted(tmp_path: Path) -> None:
    train = [_reverse(w) for w in TRAIN_WORDS]
    train += [_reverse("orange"), _reverse("forest")]
    # Same prompt up to case and whitespace: a duplicate too.
    train.append(
        {"prompt": f"  REVERSE the word 'pebble'.   {_TEMPLATE.upper()}", "answer": "elbbep"}
    )
    task = _dir_task(tmp_path, train, [_reverse(w) for w in EVAL_WORDS])
    card = build_training_set(task, "sft", 100, seed=0, out_dir=tmp_path / "out")
    assert card.duplicates_removed == 3
    assert card.contaminated_removed == 0
    assert card.final_size == len(TRAIN_WORDS)
    assert card.source == str(Path(task.spec.task_dir) / "train.jsonl")
    _accounting(card)


def test_eval_rows_in_train_are_removed_as_contaminated(tmp_path: Path) -> None:
    train = [_reverse(w) for w in TRAIN_WORDS]
    train.append(_reverse("apple"))  # copied verbatim from eval
    # Same words as an eval item, different punctuation and a prefix: not the same prompt string.
    train.append({"prompt": f"Now reverse the word: river! {_TEMPLATE}", "answer": "revir"})
    task = _dir_task(tmp_path, train, [_reverse(w) for w in EVAL_WORDS])
    card = build_training_set(task, "grpo", 100, seed=0, out_dir=tmp_path / "out")
    assert card.contaminated_removed == 2
    # Every other row shares the whole prompt template with the eval items, and is kept.
    assert card.final_size == len(TRAIN_WORDS)
    answers = set(load_training_set(tmp_path / "out")["answer"])
    assert answers == {w[::-1] for w in TRAIN_WORDS}
    _accounting(card)


_PHRASINGS = (
    "Write '{p}' in capital letters. Answer with the text only.",
    "Rewrite in upper case: {p}. Answer with the text only.",
    "Shout this: '{p}'. Answer with the text only.",
)


def _shout(phrases: list[str]) -> list[dict]:
    return [{"prompt": t.format(p=p), "answer": p.upper()} for p in phrases for t in _PHRASINGS]


def test_an_item_asked_several_ways_is_content_not_template(tmp_path: Path) -> None:
    # Each held-out phrase comes in three phrasings: its words recur in a tenth of the held-out
    # items, yet always with one answer, so they are that item's content, not boilerplate.
    eval_phrases = ["good morning", "the red car", "cold water", "old song", "tall tree"]
    eval_phrases += ["lost keys", "open sky", "hot soup", "new shoes"]
    train_phrases = ["see you soon", "time to go", "fresh bread", "long road", "warm coat"]
    train_phrases += ["dark forest", "clean room", "short story", "heavy rain", "busy street"]
    leaked = {"prompt": "Please write 'good morning' in upper case.", "answer": "GOOD MORNING"}
    task = _dir_task(tmp_path, [*_shout(train_phrases), leaked], _shout(eval_phrases))
    card = build_training_set(task, "sft", 100, seed=0, out_dir=tmp_path / "out")
    # Only the held-out phrase asked a new way is flagged; every row in a shared phrasing stays.
    assert card.contaminated_removed == 1
    assert card.final_size == 3 * len(train_phrases)
    _accounting(card)


def test_a_word_left_alone_by_the_template_flags_nothing(tmp_path: Path) -> None:
    # Each held-out phrase is asked four ways with four answers, so a three-word phrase recurs
    # with several answers and reads as template: its capital-letters item keeps only "write".
    edits = (
        ("Write '{p}' in capital letters. Answer with the text only.", str.upper),
        ("What is the first word of '{p}'? Answer with the word only.", lambda p: p.split()[0]),
        ("What is the last word of '{p}'? Answer with the word only.", lambda p: p.split()[-1]),
        ("Say the words of '{p}' in reverse order.", lambda p: " ".join(p.split()[::-1])),
    )

    def rows(phrases: list[str]) -> list[dict]:
        return [{"prompt": t.format(p=p), "answer": e(p)} for p in phrases for t, e in edits]

    held_out = rows(["the blue sky", "rain again today", "walk the dog", "cold water"])
    train = rows(["read the book", "sweet dreams", "see you soon", "hot soup", "small house"])
    task = _dir_task(tmp_path, train, held_out)
    card = build_training_set(task, "sft", 100, seed=0, out_dir=tmp_path / "out")
    # No training row shares a phrase with a held-out one: none is flagged for a lone word.
    assert card.contaminated_removed == 0
    assert card.final_size == len(train)
    _accounting(card)


def test_long_ngram_overlap_is_contamination(tmp_path: Path) -> None:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(300)]

    def sentence() -> str:
        return " ".join(rng.sample(vocab, 14))

    eval_rows = [{"prompt": sentence(), "answer": "x"} for _ in range(20)]
    train = [{"prompt": sentence(), "answer": "y"} for _ in range(30)]
    eval_words = eval_rows[0]["prompt"].split()
    # Eight consecutive eval words inside otherwise new text: caught by the 8-gram check...
    train.append({"prompt": "intro " + " ".join(eval_words[3:11]) + " outro", "answer": "z"})
    # ...while seven are not enough.
    train.append({"prompt": "intro " + " ".join(eval_words[3:10]) + " outro", "answer": "z"})
    task = _dir_task(tmp_path, train, eval_rows)
    card = build_training_set(task, "grpo", 100, seed=0, out_dir=tmp_path / "out")
    assert card.ngram_n == 8
    assert card.contaminated_removed == 1
    assert card.final_size == 31


def test_too_small_raises_and_writes_nothing(tmp_path: Path) -> None:
    task = _dir_task(
        tmp_path, [_reverse(w) for w in TRAIN_WORDS[:5]], [_reverse(w) for w in EVAL_WORDS]
    )
    with pytest.raises(DatasetError, match="only 5 training examples"):
        build_training_set(task, "sft", 50, seed=0, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    _no_leftovers(tmp_path, {"task"})


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown format"):
        build_training_set(load_task(), "dpo", 10, seed=0, out_dir=tmp_path / "o")  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="size"):
        build_training_set(load_task(), "sft", 0, seed=0, out_dir=tmp_path / "o")


def test_rebuild_replaces_previous_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_training_set(load_task(), "sft", 20, seed=0, out_dir=out)
    card = build_training_set(load_task("sort_list"), "grpo", 12, seed=0, out_dir=out)
    assert read_card(out) == card
    assert load_training_set(out).column_names == ["prompt", "answer"]
    assert len(load_training_set(out)) == 12
    _no_leftovers(tmp_path, {"out"})


def test_failed_save_keeps_previous_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    first = build_training_set(load_task(), "sft", 20, seed=0, out_dir=out)

    def broken(self: hf_datasets.Dataset, path: str, **kwargs: object) -> None:
        Path(path, "partial.arrow").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(hf_datasets.Dataset, "save_to_disk", broken)
    with pytest.raises(OSError, match="disk full"):
        build_training_set(load_task(), "grpo", 20, seed=1, out_dir=out)
    assert read_card(out) == first
    _no_leftovers(tmp_path, {"out"})
    with pytest.raises(OSError, match="disk full"):
        build_training_set(load_task(), "grpo", 20, seed=1, out_dir=tmp_path / "fresh")
    _no_leftovers(tmp_path, {"out"})


def test_reading_something_else_fails(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing dataset card"):
        read_card(tmp_path)
    (tmp_path / "card.json").write_text("{}")
    with pytest.raises(DatasetError, match="invalid dataset card"):
        read_card(tmp_path)
    with pytest.raises(DatasetError, match="not a postlab training set"):
        load_training_set(tmp_path / "nothing")


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_PHRASINGS = (
    ("Today is {d}. What day will it be in {n} days? Answer with the day only.", 1),
    ("It is {d}. What day comes {n} days later? Answer with the day only.", 1),
    ("If today is {d}, which day was it {n} days earlier? Answer with the day only.", -1),
    ("Today is {d}. What day was it {n} days ago? Answer with the day only.", -1),
)


def test_a_slot_the_answers_fill_is_content_not_template(tmp_path: Path) -> None:
    # The day a question starts from is one of the seven answers, and each "today is <day>"
    # recurs in a tenth of the held-out items: as template it would leave a row's number and
    # answer alone, and flag every row of another day that shares them.
    rng = random.Random(5)
    asked = [(rng.randrange(4), rng.randrange(7), rng.randint(1, 20)) for _ in range(300)]
    rows = {}
    for phrasing, day, n in asked:
        template, sign = _DAY_PHRASINGS[phrasing]
        prompt = template.format(d=_DAYS[day], n=n)
        answer = _DAYS[(day + sign * n) % 7]
        # A question is its day, its number and its answer: "7 days later" asks "7 days ago".
        rows[prompt] = ({"prompt": prompt, "answer": answer}, (day, n, answer))
    items = list(rows.values())
    held_out, train = items[:60], items[60:]
    task = _dir_task(tmp_path, [row for row, _ in train], [row for row, _ in held_out])
    index = held_out_index(task)
    questions = {question for _, question in held_out}
    flagged = {row["prompt"] for row, _ in train if index.contaminates(Example(**row))}
    # Exactly the rows that ask a held-out question in another phrasing, and no other row.
    assert flagged == {row["prompt"] for row, question in train if question in questions}
    assert 0 < len(flagged) < len(train)
