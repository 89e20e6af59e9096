"""The playbook policy: the order of work, refinements after each outcome, and stopping."""

from pathlib import Path

from postlab.graph.playbook import decide, hyper_for, refine
from postlab.records.artifacts import FailureInfo, TrainingResult
from postlab.records.hyper import Hyper
from postlab.records.outcomes import (
    BestModel,
    EvaluationRecord,
    PaperRef,
    TechniqueFinding,
    TrainingRecord,
)
from postlab.records.run import RunOptions, StopReason
from postlab.records.steps import Plan


def finding(key, method="sft", lr=None):
    recipe = {"learning_rate": lr} if lr else {}
    return TechniqueFinding(
        key=key,
        name=key,
        method=method,
        runnable=key in ("sft_full", "sft_lora", "grpo"),
        relevance=1.0,
        rationale="r",
        recipe=recipe,
        papers=[PaperRef(id="2106.09685", title="LoRA", year=2021)],
    )


def evaluation(iteration, strict):
    return EvaluationRecord(
        label="baseline" if iteration == 0 else f"iter-{iteration}",
        iteration=iteration,
        checkpoint=f"ckpt-{iteration}",
        strict=strict,
        lenient=strict,
        n=100,
    )


def base_state(tmp_path: Path, **extra):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model.safetensors").write_bytes(b"0" * 1024)
    state = {
        "run_dir": str(tmp_path),
        "goal": "g",
        "task": "addition_2d",
        "base_model_path": str(model),
        "run_options": RunOptions(),
        "trajectory": [],
        "evaluations": [],
        "runs": [],
        "tried_techniques": [],
    }
    state.update(extra)
    return state


def test_order_of_work(tmp_path):
    state = base_state(tmp_path)
    decision, _ = decide(state, 0, None)
    assert (decision.next, decision.directive.action) == ("evaluator", "baseline")
    state["baseline"] = evaluation(0, 0.0)
    state["evaluations"] = [state["baseline"]]
    decision, _ = decide(state, 1, None)
    assert decision.next == "librarian"
    state["findings"] = [finding("data_quality", "data"), finding("sft_lora"), finding("sft_full")]
    decision, plan = decide(state, 2, None)
    # A small model gets full fine-tuning first, whatever the ranking of the LoRA card.
    assert decision.next == "data_engineer" and plan.technique == "sft_full"
    assert "LoRA (2106.09685)" in plan.reason
    state["plan"] = plan.model_copy(update={"status": "needs_training", "dataset_path": "d"})
    decision, _ = decide(state, 3, None)
    assert decision.next == "trainer"
    # The plan carries the iteration's parameters; the directive only names the action.
    assert decision.directive.action == "train" and decision.directive.args == {}
    assert plan.arguments("train")["learning_rate"] == plan.hyper.learning_rate


def test_recipe_learning_rate_is_clamped_to_the_cpu_range():
    assert hyper_for(finding("sft_full", lr=5e-6), RunOptions()).learning_rate == 1e-4
    lora = hyper_for(finding("sft_lora", lr=2e-4), RunOptions())
    assert lora.learning_rate == 2e-4 and lora.lora_alpha == 2 * lora.lora_r
    grpo = hyper_for(finding("grpo", "grpo"), RunOptions(batch_size=6))
    assert grpo.batch_size % grpo.num_generations == 0


def _failed_state(tmp_path, kind):
    plan = Plan(
        iteration=1,
        technique="sft_full",
        method="sft",
        init_checkpoint="base",
        hyper=Hyper(adapter="full", learning_rate=1e-4, max_steps=40, batch_size=8),
        data_format="sft",
        data_size=100,
        data_seed=1,
        reason="r",
        status="failed",
    )
    result = TrainingResult(
        status="failed", failure=FailureInfo(kind=kind, message="m", normalized="n")
    )
    run = TrainingRecord(iteration=1, technique="sft_full", spec={}, result=result)
    state = base_state(
        tmp_path,
        findings=[finding("sft_full"), finding("sft_lora")],
        plan=plan,
        runs=[run],
        baseline=evaluation(0, 0.0),
        evaluations=[evaluation(0, 0.0)],
    )
    return state, plan


def test_oom_halves_batch_and_doubles_accumulation(tmp_path):
    state, plan = _failed_state(tmp_path, "oom")
    new, kind = refine(state, plan)
    assert kind == "fix" and new.hyper.batch_size == 4 and new.hyper.grad_accum == 2
    assert new.iteration == 2 and new.technique == "sft_full"


def test_divergence_quarters_learning_rate(tmp_path):
    state, plan = _failed_state(tmp_path, "nan")
    new, _ = refine(state, plan)
    assert new.hyper.learning_rate == 2.5e-5


def test_bad_config_switches_technique(tmp_path):
    state, plan = _failed_state(tmp_path, "bad_config")
    new, kind = refine(state, plan)
    assert kind == "switch" and new.technique == "sft_lora"


def test_gain_continues_from_new_best_and_target_stops(tmp_path):
    plan = Plan(
        iteration=1,
        technique="sft_full",
        method="sft",
        init_checkpoint="base",
        hyper=Hyper(adapter="full", learning_rate=1e-4, max_steps=40, batch_size=8),
        data_format="sft",
        data_size=100,
        data_seed=1,
        reason="r",
        status="done",
    )
    evaluations = [evaluation(0, 0.0), evaluation(1, 0.6)]
    best = BestModel(checkpoint="ckpt-1", strict=0.6, lenient=0.6, label="iter-1", iteration=1)
    state = base_state(
        tmp_path,
        findings=[finding("sft_full")],
        plan=plan,
        baseline=evaluations[0],
        evaluations=evaluations,
        best=best,
    )
    decision, new = decide(state, 5, None)
    assert decision.next == "data_engineer"
    assert new.init_checkpoint == "ckpt-1" and new.data_seed != plan.data_seed
    assert "0.00 → 0.60" in new.reason
    state["best"] = best.model_copy(update={"strict": 0.96})
    decision, _ = decide(state, 5, None)
    assert decision.stop_reason == StopReason.TARGET_MET
    state["best"] = best
    state["run_options"] = RunOptions(max_iterations=1)
    decision, _ = decide(state, 5, None)
    assert decision.stop_reason == StopReason.BUDGET_ITERATIONS


def test_grpo_starts_from_the_sft_checkpoint_once_sft_stops_improving(tmp_path):
    plan = Plan(
        iteration=3,
        technique="sft_lora",
        method="sft",
        init_checkpoint="ckpt-2",
        hyper=Hyper(adapter="lora", learning_rate=2e-4, max_steps=40, batch_size=8),
        lr_halved=True,
        data_format="sft",
        data_size=100,
        data_seed=3,
        reason="r",
        status="done",
    )
    evaluations = [evaluation(0, 0.0), evaluation(1, 0.5), evaluation(2, 0.6), evaluation(3, 0.6)]
    best = BestModel(checkpoint="ckpt-2", strict=0.6, lenient=0.6, label="iter-2", iteration=2)
    state = base_state(
        tmp_path,
        findings=[finding("sft_full"), finding("sft_lora"), finding("grpo", "grpo")],
        plan=plan,
        baseline=evaluations[0],
        evaluations=evaluations,
        best=best,
        tried_techniques=["sft_full", "sft_lora"],
    )
    decision, new = decide(state, 12, None)
    assert new.technique == "grpo" and new.method == "grpo" and new.data_format == "grpo"
    assert new.init_checkpoint == "ckpt-2"
    assert new.hyper.batch_size % new.hyper.num_generations == 0
    assert decision.directive.action == "build_dataset"
    assert new.arguments("build_dataset") == {
        "format": "grpo",
        "size": new.data_size,
        "seed": new.data_seed,
    }
