"""An external test judge in the PostTrainBench contract: it, not the task's split, grades test."""

import json
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from postlab.graph.runner import run_lab
from postlab.records.run import RunOptions
from postlab.tools.evaluation.external import judge_argv, run_external_evaluation
from postlab.tools.evaluation.scoring import EvaluationError

# A judge of our own in the contract: it loads the checkpoint's config (so it was given a real
# model folder), logs each call, and grades trained checkpoints above the base model.
EVALUATE_PY = """
import argparse, json, sys
from pathlib import Path
from transformers import AutoConfig
parser = argparse.ArgumentParser()
parser.add_argument("--model-path", required=True)
parser.add_argument("--limit", type=int, default=None)
parser.add_argument("--json-output-file", required=True)
args = parser.parse_args()
AutoConfig.from_pretrained(args.model_path)
with open(Path(__file__).with_name("calls.log"), "a") as log:
    log.write(json.dumps({"model": args.model_path, "limit": args.limit}) + "\\n")
accuracy = 0.75 if "iter-" in args.model_path else 0.25
with open(args.json_output_file, "w") as out:
    json.dump({"accuracy": accuracy, "stderr": 0.0123}, out)
"""

SMALL = {"train_steps": 2, "train_size": 24, "eval_limit": 6, "batch_size": 4, "max_iterations": 2}


@pytest.fixture
def judge(tmp_path) -> tuple[str, Path]:
    script = tmp_path / "judge" / "evaluate.py"
    script.parent.mkdir()
    script.write_text(textwrap.dedent(EVALUATE_PY))
    command = f"{sys.executable} {script} --model-path {{model}} --limit {{limit}} "
    return command + "--json-output-file {out}", script.with_name("calls.log")


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_placeholders_are_filled_and_a_bare_command_gets_the_contract_flags(tmp_path):
    out = tmp_path / "m.json"
    template = "ev --model-path {model} --limit {limit} --json-output-file {out}"
    filled = judge_argv(template, "/m", out, 5)
    assert filled == ["ev", "--model-path", "/m", "--limit", "5", "--json-output-file", str(out)]
    bare = judge_argv("python evaluate.py", "/m", out, None)
    assert bare == ["python", "evaluate.py", "--model-path", "/m", "--json-output-file", str(out)]
    assert judge_argv("ev", "/m", out, 7)[-2:] == ["--limit", "7"]
    with pytest.raises(EvaluationError, match="no limit"):
        judge_argv("ev {model} {limit}", "/m", out, None)


def test_a_judge_that_fails_or_writes_nonsense_is_a_clear_error(tmp_path):
    with pytest.raises(EvaluationError, match="exited 3"):
        run_external_evaluation(f"{sys.executable} -c 'raise SystemExit(3)'", "/m")
    nonsense = tmp_path / "nonsense.py"
    nonsense.write_text(
        "import sys, json\n"
        "out = sys.argv[sys.argv.index('--json-output-file') + 1]\n"
        "json.dump({'accuracy': 1.7}, open(out, 'w'))\n"
    )
    with pytest.raises(EvaluationError, match="no valid metrics"):
        run_external_evaluation(f"{sys.executable} {nonsense}", "/m")


def test_options_refuse_a_judge_they_cannot_call():
    with pytest.raises(ValidationError, match="set eval_cmd"):
        RunOptions(judge_candidates=True)
    with pytest.raises(ValidationError, match="set eval_limit"):
        RunOptions(eval_cmd="ev --limit {limit}")


def test_the_external_judge_grades_baseline_and_final_best_only(
    tiny_model, tmp_path, judge, trained_iterations_win
):
    command, log = judge
    run_dir = tmp_path / "run"
    options = {**SMALL, "eval_cmd": command}
    run_lab({"task": "addition_2d", "model": str(tiny_model), "budget": 40,
             "run_dir": str(run_dir), "options": options})  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    calls = _calls(log)
    # The base model, then the validation-selected best, once each; with the run's limit.
    assert len(calls) == 2
    assert "iter-" not in calls[0]["model"] and calls[1]["model"].endswith("checkpoint")
    assert {call["limit"] for call in calls} == {6}
    assert summary["baseline_score"] == 0.25 and summary["best_score"] == 0.75
    assert summary["best_stderr"] == summary["baseline_stderr"] == 0.0123
    assert summary["splits"]["test_judge"] == command
    # Validation still decided: the best's validation score is the task's own.
    assert summary["best_val_n"] == 6
    report = (run_dir / "report.md").read_text()
    assert "judged by the external command" in report and "0.75 ± 0.01" in report


@pytest.mark.slow
def test_judged_candidates_are_shown_and_the_best_is_not_judged_twice(
    tiny_model, tmp_path, judge, trained_iterations_win
):
    command, log = judge
    run_dir = tmp_path / "run"
    options = {**SMALL, "eval_cmd": command, "judge_candidates": True}
    run_lab({"task": "addition_2d", "model": str(tiny_model), "budget": 40,
             "run_dir": str(run_dir), "options": options})  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    new_bests = [e for e in summary["evaluations"] if e["is_best"] and e["iteration"] > 0]
    assert len(new_bests) == 2
    calls = _calls(log)
    assert len(calls) == 1 + len(new_bests)
    # Every judged candidate carries its score on its record; the best's is the one reported.
    assert all(e["test"]["judge"] == command and e["test"]["strict"] == 0.75 for e in new_bests)
    assert summary["best_score"] == 0.75
