"""Evaluation: scoring, error categories, real generation on a tiny model, external commands."""

import sys
import textwrap

import pytest

from postlab.tools.evaluation.scoring import (
    EvaluationError,
    categorize,
    evaluate_checkpoint,
    run_external_evaluation,
    score,
)
from postlab.tools.tasks.catalog import Example, load_task


def test_score_counts_strict_lenient_and_categories():
    task = load_task("addition_2d")
    examples = [Example(prompt=f"q{i}", answer=str(i)) for i in range(4)]
    completions = ["0", "The answer is 1.", "", "7"]
    result = score(task, examples, completions, "m")
    assert result.strict == 0.25
    assert result.lenient == 0.5
    assert result.error_categories == {"correct": 1, "format": 1, "empty": 1, "wrong": 1}
    assert [f.category for f in result.failures] == ["format", "empty", "wrong"]


def test_categorize():
    assert categorize("5", True, True) == "correct"
    assert categorize("it is 5", False, True) == "format"
    assert categorize("  ", False, False) == "empty"
    assert categorize("6", False, False) == "wrong"


def test_evaluate_checkpoint_generates_on_the_held_out_split(tiny_model):
    task = load_task("addition_2d")
    seen = []
    result = evaluate_checkpoint(
        tiny_model, task, limit=6, batch_size=4, on_batch=lambda d, n: seen.append((d, n))
    )
    assert result.n == 6
    assert 0.0 <= result.strict <= result.lenient <= 1.0
    assert seen == [(4, 6), (6, 6)]
    assert sum(result.error_categories.values()) == 6


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(EvaluationError, match="config.json missing"):
        evaluate_checkpoint(tmp_path, load_task("addition_2d"))


def test_external_evaluation_command_contract(tmp_path):
    script = tmp_path / "evaluate.py"
    script.write_text(
        textwrap.dedent(
            """
            import argparse, json
            parser = argparse.ArgumentParser()
            parser.add_argument("--model-path")
            parser.add_argument("--json-output-file")
            args = parser.parse_args()
            json.dump({"accuracy": 0.5, "model": args.model_path}, open(args.json_output_file, "w"))
            """
        )
    )
    metrics = run_external_evaluation(f"{sys.executable} {script}", "/some/model")
    assert metrics == {"accuracy": 0.5, "model": "/some/model"}
    with pytest.raises(EvaluationError, match="exited"):
        run_external_evaluation(f"{sys.executable} -c 'raise SystemExit(3)'", "/m")
