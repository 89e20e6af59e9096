"""The report an ML engineer keeps: curves and anomalies from train.log, the target and whether it
was met, how to load the model and the exact command that reruns the run."""

import json

from postlab.tools.reporting.curves import anomalies, in_order, read_curves
from postlab.tools.reporting.markdown import md, render_report, write_report
from postlab.tools.training.failures import EVENT_MARKER


def _log(folder, points):
    folder.mkdir(parents=True)
    lines = ["some trainer noise"]
    for step, loss, norm in points:
        event = {"event": "progress", "step": step, "loss": loss, "grad_norm": norm,
                 "learning_rate": 1e-4}  # fmt: skip
        lines.append(EVENT_MARKER + json.dumps(event))
    lines.append(EVENT_MARKER + "{not json")
    (folder / "train.log").write_text("\n".join(lines))


def _summary(tmp_path):
    _log(tmp_path / "it1", [(1, 2.0, 5.0), (2, 1.0, 80.0), (3, 0.5, 4.0), (4, 0.4, 6.0)])
    _log(tmp_path / "it2", [(1, 0.3, 5.0), (2, 0.2, 5.0), (3, 0.6, 5.0)])
    iterations = [
        {"iteration": k, "technique": "sft_full", "status": "evaluated", "reason": "r",
         "score": s, "spec": {"output_dir": str(tmp_path / f"it{k}"), "method": "sft",
                              "max_steps": 4, "batch_size": 8}, "dataset": data,
         "parent": k - 1, "move": move, "train_s": 30.4, "eval_s": 5.0}
        for k, s, move, data in ((1, 0.5, "open", "d"), (2, 0.4, "target_errors", "e"))
    ]  # fmt: skip
    return {
        "run_id": "r", "goal": "g", "task": "addition_2d", "task_dir": None,
        "base_model": "smollm2-135m-instruct", "stop_reason": "budget_iterations",
        "stop_detail": "", "steps_used": 9, "budget": 60, "baseline_val_score": 0.0,
        "best_val_score": 0.5, "best_checkpoint": "/runs/r/models/iter-1/checkpoint",
        "target_score": 0.9, "iterations": iterations,
        "datasets": [
            {"path": "d", "recipe": "plain", "final_size": 16},
            {"path": "e", "recipe": "unlearned_kind", "final_size": 16, "recipe_stats": {
                "kinds": [f"how many s are in # {unit}?" for unit in "abcde"],
                "kind_share": 0.6}},
        ],
        "evaluations": [
            {"iteration": 0, "label": "baseline", "strict": 0.0, "lenient": 0.0, "n": 20},
            {"iteration": 1, "label": "iter-1", "strict": 0.5, "n": 20,
             "error_categories": {"correct": 10, "off_by_power_of_ten": 7, "wrong": 3},
             "miss_clusters": [{"size": 2, "share": 0.667, "example": {
                 "prompt": "capital of Peru?", "completion": "London", "answer": "Lima",
                 "category": "wrong"}, "near_items": 6, "near_accuracy": 0.333,
                 "rest_accuracy": 0.8, "unlearned": True}]},
        ],
        "options": {"max_iterations": 2, "train_steps": 4, "train_size": 16, "batch_size": 8,
                    "seed": 0, "target_score": 0.9},
        "versions": {"postlab": "0.1.0", "torch": "2.13.0"}, "source_revision": "abc123",
        "error_analysis": [{"category": "wrong", "prompt": "q", "completion": "1", "answer": "2"}],
        "best_misses": 10,
    }  # fmt: skip


def test_curves_are_read_from_the_logs_and_anomalies_named(tmp_path):
    curves = read_curves(_summary(tmp_path)["iterations"])
    assert [p["step"] for p in curves[1]] == [1, 2, 3, 4] and curves[2][-1]["loss"] == 0.6
    noticed = anomalies(curves)
    assert noticed == [
        "iteration 1: gradient norm 80.0 at step 2, 15× the median 5.50",
        "iteration 2: loss ended at 0.600, above its low of 0.200",
    ]
    # Read easy to hard (a curriculum's rows), the hardest rows come last: a rise is no anomaly.
    iterations = _summary(tmp_path / "ordered")["iterations"]
    iterations[1]["spec"]["train_sampling"] = "sequential"
    assert in_order(iterations) == {2}
    assert anomalies(curves, in_order(iterations)) == noticed[:1]


def test_the_report_shows_curves_target_data_use_and_how_to_rerun(tmp_path):
    summary = _summary(tmp_path)
    report = write_report(tmp_path, summary).read_text()
    assert (tmp_path / "training.png").is_file() and "![training curves](training.png)" in report
    assert "**Target:** 0.90 validation accuracy — missed (best 0.50)" in report
    assert "gradient norm 80.0 at step 2" in report
    assert "plain recipe, 16 rows, 2.00 epochs" in report
    # What a recipe aimed at is named: the first four kinds of question, then a count.
    kinds = "; ".join(f"'how many s are in \\# {unit}?'" for unit in "abcd")
    assert f"(kind share 0.6, kinds: {kinds} and 1 more)" in report
    assert "A sample of 1 of its 10 validation misses" in report
    # The chain: misses by category → the move they drove → its effect on validation.
    chain = "misses by category (read by the next decision): off_by_power_of_ten 7, wrong 3"
    assert md(chain) in report
    assert md("From: iteration 1, by target_errors") in report
    cluster = "2 free-form misses (67%) resemble: capital of Peru? → London (expected Lima)"
    assert md(cluster) in report
    region = "6 validation questions lie near them, 33% right against 80% of the rest"
    assert f"{region} (a weak region)" in report
    assert "(-0.10 against iter-1's 0.50)" in report
    assert "- Time: 30s training, 5s scoring" in report
    assert 'path = "/runs/r/models/iter-1/checkpoint"' in report
    assert (
        "postlab run --task addition_2d --model smollm2-135m-instruct --budget 60 "
        "--max-iterations 2 --train-steps 4 --train-size 16 --batch-size 8 --seed 0 --target 0.9"
    ) in report
    assert "torch 2.13.0" in report and "postlab source abc123" in report


def test_a_run_that_trained_nothing_says_so():
    summary = {
        "run_id": "r", "goal": "g", "task": "t", "base_model": "m", "stop_reason": "error",
        "steps_used": 0, "budget": 1, "best_checkpoint": None, "iterations": [],
        "target_score": 0.9,
    }  # fmt: skip
    report = render_report(summary, None)
    assert "not reached (nothing trained)" in report and "## Use it" not in report


def test_a_best_that_held_a_higher_score_says_why(tmp_path):
    summary = _summary(tmp_path)
    assert "without beating" not in write_report(tmp_path, summary).read_text()
    summary["best_label"] = "iter-3"
    summary["best_held"] = {"label": "iter-2", "strict": 0.27, "stderr": 0.081}
    report = write_report(tmp_path, summary).read_text()
    assert (
        "iter-3 is the best without beating the highest validation score: it is within one "
        "standard error (0.08) of iter-2's 0.27, the highest validation score, on the schedule "
        "it continued"
    ) in report


def test_a_best_restored_after_a_label_phase_says_what_it_was_set_aside_for(tmp_path):
    summary = _summary(tmp_path)
    assert "set aside" not in write_report(tmp_path, summary).read_text()
    summary["best_label"], summary["best_restored_over"] = "iter-1", "iter-2"
    summary["evaluations"].append({"iteration": 2, "label": "iter-2", "strict": 0.3, "n": 20})
    report = write_report(tmp_path, summary).read_text()
    assert (
        "iter-1 was set aside in a label phase, when a collapsed stretch went on with its "
        "schedule and took the best's place; nothing since beat its 0.50 on validation, so it "
        "is the result, not iter-2 (0.30), the last to hold that place."
    ) in report


def test_a_best_no_better_than_one_answer_given_to_everything_says_so(tmp_path):
    summary = {**_summary(tmp_path), "best_label": "iter-1"}
    summary["constant_answer"] = {
        "answer": "Africa", "validation": 0.3, "validation_n": 20, "test": 0.25, "test_n": 40,
    }  # fmt: skip
    result = render_report(summary, None).split("## Iterations")[0]
    assert "| always 'Africa' (training's commonest answer) | 0.30 ± 0.10 | 0.25 ± 0.07 | — |" in (
        result
    )
    # Above the floor and not collapsed: nothing more to say.
    assert "one answer given to everything" not in result and "a collapse" not in result
    summary["evaluations"][1]["collapse"] = 1.0
    assert (
        "iter-1 gave one and the same answer to 100% of validation questions (a collapse): its "
        "score comes mostly from that one answer, not a skill; on validation it scores 0.50, "
        "against 0.30 for always answering 'Africa'."
    ) in render_report(summary, None)
    summary["evaluations"][1]["collapse"] = 0.0
    summary["constant_answer"]["validation"] = 0.5
    report = render_report(summary, None)
    assert (
        "iter-1 learned no skill beyond one answer given to everything; on validation it scores "
        "0.50, no higher than 0.50 for always answering 'Africa'."
    ) in report
    # At or under the floor the target is not met, though the score reaches it.
    summary["target_score"] = 0.4
    target = "**Target:** 0.40 validation accuracy — {} (best 0.50)"
    assert target.format("missed") in render_report(summary, None)
    summary["constant_answer"]["validation"] = 0.3
    assert target.format("met") in render_report(summary, None)
    # A run from before the floor was measured: no row, and a collapse said without it.
    del summary["constant_answer"]
    summary["evaluations"][1]["collapse"] = 0.9
    result = render_report(summary, None).split("## Iterations")[0]
    assert (
        "always" not in result
        and ("questions (a collapse): its score comes mostly from that one answer, not a skill.\n")
        in result
    )
