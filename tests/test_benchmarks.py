"""Standard benchmarks through lm-evaluation-harness: its prompts to train, its score on test."""

import json

import pytest
from support.benchmark_data import QUESTIONS, SPLITS, WORD_PROBLEMS, write_arc_easy, write_gsm8k
from typer.testing import CliRunner

from postlab.cli.app import app
from postlab.graph.runner import run_lab
from postlab.tools.benchmarks.harness import BenchmarkError, benchmark_config, materialize, score

SMALL = {"train_steps": 2, "train_size": 24, "batch_size": 4, "max_iterations": 1}


@pytest.fixture(scope="module")
def arc_dir(tmp_path_factory):
    return write_arc_easy(tmp_path_factory.mktemp("arc"), leak_test_into_train=True)


def test_a_benchmark_becomes_a_task_folder_in_the_harness_prompts(arc_dir, tmp_path):
    folder = materialize("arc_easy", arc_dir, tmp_path / "task")
    train = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (folder / "eval.jsonl").read_text().splitlines()]
    valid = (folder / "valid.jsonl").read_text().splitlines()
    assert (len(train), len(valid), len(test)) == (len(SPLITS["train"]) + 1, 6, 6)
    question, choices, right = QUESTIONS[SPLITS["test"][0]]
    # arc_easy's doc_to_text and the text of the right choice, as lm-eval renders them.
    assert test[0] == {"prompt": f"Question: {question}\nAnswer:", "answer": choices[right]}


def test_unknown_and_unsupported_benchmarks_are_clear_errors(arc_dir, tmp_path):
    with pytest.raises(BenchmarkError, match="unknown benchmark"):
        benchmark_config("arc_eazy")
    with pytest.raises(BenchmarkError, match="only multiple-choice"):
        benchmark_config("wikitext")
    with pytest.raises(BenchmarkError, match="no parquet"):
        benchmark_config("arc_easy", tmp_path)
    result = CliRunner().invoke(app, ["run", "--benchmark", "arc_eazy"])
    assert result.exit_code == 2 and "unknown benchmark" in result.output


def test_a_benchmark_run_is_judged_by_the_harness(arc_dir, tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    options = {**SMALL, "benchmark": "arc_easy", "benchmark_data": str(arc_dir)}
    run_lab({"model": str(tiny_model), "budget": 20, "run_dir": str(run_dir),
             "options": options})  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "arc_easy" and summary["stop_reason"] != "error"
    assert "postlab.tools.benchmarks.harness" in summary["splits"]["test_judge"]
    # The leaked test question never reached training.
    assert sum(card["contaminated_removed"] for card in summary["datasets"]) >= 1
    # The reported test score is what the harness itself says of the same checkpoint.
    best = run_dir / summary["best_checkpoint"]
    harness = score("arc_easy", arc_dir, str(best), None)
    assert summary["best_score"] == harness["accuracy"] and harness["n"] == 6
    assert summary["best_stderr"] == pytest.approx(harness["stderr"], abs=1e-4)


def test_a_generated_answer_benchmark_trains_on_worked_solutions_and_is_judged_by_exact_match(
    tiny_model, tmp_path
):
    data = write_gsm8k(tmp_path / "gsm8k")
    folder = materialize("gsm8k", data, tmp_path / "task")
    meta = json.loads((folder / "task.json").read_text())
    train = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    question, answer = WORD_PROBLEMS[0]
    # The harness's prompt and the worked solution; the lab's validation compares the numbers.
    assert train[0] == {"prompt": f"Question: {question}\nAnswer:", "answer": answer}
    assert meta["metric"] == "numeric" and not (folder / "valid.jsonl").exists()
    judged = score("gsm8k", data, str(tiny_model), limit=2)
    assert judged["metric"] == "exact_match,strict-match" and judged["n"] == 2
    assert 0 <= judged["accuracy"] <= 1
