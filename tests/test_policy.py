"""The playbook policy: the order of work, refinements after each outcome, and stopping."""

import json
from pathlib import Path
from types import SimpleNamespace

from support.task_folders import sums_folder

from postlab.agents.best_place import schedule_hold
from postlab.agents.evaluator import constant_answer_floor, training_answer_shift
from postlab.agents.librarian import rank_techniques
from postlab.agents.trainer import spec_for
from postlab.graph.experiments import hyper_for, usable_recipes
from postlab.graph.finalize import build_summary
from postlab.graph.llm_router import digest
from postlab.graph.memorised import last_bet
from postlab.graph.playbook import decide
from postlab.graph.refinements import refine
from postlab.graph.supervisor import _schedule_running
from postlab.records.artifacts import DatasetCard, FailureInfo, FailureSample, TrainingResult
from postlab.records.hyper import Hyper
from postlab.records.outcomes import (
    AnswerShift,
    BestModel,
    ConstantAnswer,
    EvaluationRecord,
    FolderSurvey,
    HeldPeak,
    LearningRateEvidence,
    MissCluster,
    PaperRef,
    TechniqueFinding,
    TrainingRecord,
)
from postlab.records.run import RunOptions, StopReason
from postlab.records.steps import GuardEvent, Iteration, Plan, TrajectoryRecord
from postlab.tools.data.recombination import survey_folder
from postlab.tools.data.training_sets import check_trainable
from postlab.tools.papers.corpus import load_corpus
from postlab.tools.tasks.catalog import load_task
from postlab.tools.training.recipes import LR_BOUNDS, rate_range

LORA_PAPER = PaperRef(id="2106.09685", title="LoRA", year=2021)


def finding(key, method="sft", lr=None, measured_at=None, more=()):
    """A card; `lr` is reported by the LoRA paper at `measured_at`, `more` by other papers."""
    lead = {"paper": LORA_PAPER, "learning_rate": lr, "model_params": measured_at}
    rates = [LearningRateEvidence(**lead)] if lr else []
    rates += [
        LearningRateEvidence(paper=PaperRef(id=f"p{i}", title=f"P{i}", year=2024), **evidence)
        for i, evidence in enumerate(more)
    ]
    return TechniqueFinding(
        key=key,
        name=key,
        method=method,
        runnable=True,
        relevance=1.0,
        rationale="r",
        learning_rates=rates,
        papers=[LORA_PAPER],
    )


def evaluation(iteration, strict, **categories):
    return EvaluationRecord(
        label="baseline" if iteration == 0 else f"iter-{iteration}",
        iteration=iteration,
        checkpoint=f"ckpt-{iteration}",
        strict=strict,
        lenient=strict,
        n=100,
        error_categories={"correct": round(100 * strict), **categories},
    )


def sft_plan(iteration=1, status="done", **changes):
    fields = dict(
        iteration=iteration,
        technique="sft_full",
        method="sft",
        init_checkpoint="base",
        hyper=Hyper(adapter="full", learning_rate=1e-4, max_steps=40, batch_size=8),
        data_format="sft",
        data_size=100,
        data_seed=1,
        reason="r",
        status=status,
    )
    return Plan(**{**fields, **changes})


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
    decision, _ = decide(state, 1, None)
    assert (decision.next, decision.directive.action) == ("evaluator", "baseline")
    state["baseline"] = evaluation(0, 0.0)
    state["evaluations"] = [state["baseline"]]
    decision, _ = decide(state, 2, None)
    assert decision.next == "librarian"
    state["findings"] = [
        finding("rejection_sampling"),
        finding("grpo", "grpo"),
        finding("curriculum", "data"),
        finding("sft_full"),
    ]
    decision, plan = decide(state, 3, None)
    # At 0.00 validation accuracy sampling-based techniques have nothing to learn from: the
    # top card that can learn here opens, and the reason says what was passed over and why.
    assert decision.next == "data_engineer" and plan.technique == "curriculum"
    assert plan.data_recipe == "curriculum" and plan.method == "sft"
    assert "rejection_sampling needs validation accuracy" in plan.reason
    assert "LoRA (2106.09685)" in plan.reason
    state["plan"] = plan.model_copy(update={"status": "needs_training", "dataset_path": "d"})
    decision, _ = decide(state, 4, None)
    # The plan carries the iteration's parameters; the directive only names the action.
    assert decision.next == "trainer" and decision.directive.args == {}
    assert plan.arguments("train")["learning_rate"] == plan.hyper.learning_rate


def test_techniques_option_restricts_the_choice(tmp_path):
    state = base_state(
        tmp_path,
        run_options=RunOptions(techniques=["sft_lora"]),
        baseline=evaluation(0, 0.0),
        evaluations=[evaluation(0, 0.0)],
        findings=[finding("sft_full"), finding("sft_lora")],
    )
    _, plan = decide(state, 3, None)
    assert plan.technique == "sft_lora" and plan.hyper.adapter == "lora"


def test_card_learning_rate_is_scaled_to_the_model_by_the_written_rule(tmp_path):
    state = base_state(tmp_path)
    full, how = hyper_for(finding("sft_full", lr=1e-5), state)
    # The fixture's weights are tiny, so the size factor is at its cap: 1e-5 x 8.
    assert full.learning_rate == LR_BOUNDS["full"][1] and "1e-05 assumed measured at 7B × 8 " in how
    assert "LoRA (2106.09685)" in how
    capped, how = hyper_for(finding("sft_full", lr=2e-5), state)
    assert capped.learning_rate == LR_BOUNDS["full"][1] and "bounded to" in how
    lora, _ = hyper_for(finding("sft_lora", lr=2e-4), state)
    assert lora.learning_rate == 1e-3 and lora.lora_alpha == 2 * lora.lora_r
    grpo, _ = hyper_for(
        finding("grpo", "grpo"), base_state(tmp_path, run_options=RunOptions(batch_size=6))
    )
    assert grpo.batch_size % grpo.num_generations == 0 and grpo.max_steps == 20


def test_a_card_without_a_reported_rate_borrows_its_trainers_evidence(tmp_path):
    plain = finding("sft_full", lr=4e-7, measured_at=8e9)
    state = base_state(tmp_path, findings=[finding("data_quality"), plain])
    borrowed, how = hyper_for(finding("data_quality"), state)
    assert borrowed.learning_rate == hyper_for(plain, state)[0].learning_rate
    assert "the sft_full card (2106.09685: same trainer and adapter" in how
    # With nothing to borrow, the technique's own default, said as such.
    alone, how = hyper_for(finding("data_quality"), base_state(tmp_path))
    assert "the technique's default" in how and alone.learning_rate != borrowed.learning_rate


def test_a_learning_rate_is_scaled_from_the_size_of_the_model_its_paper_measured(tmp_path):
    state = base_state(tmp_path)
    hyper, how = hyper_for(finding("sft_lora", lr=2e-4, measured_at=300.0), state)
    # Measured on a model barely larger than this one: the rate carries over almost unchanged.
    assert 2e-4 <= hyper.learning_rate < 2.5e-4, how
    assert "measured at" in how and "assumed" not in how and "LoRA (2106.09685)" in how


def test_papers_that_disagree_are_pooled_by_geometric_mean(tmp_path):
    state = base_state(tmp_path)
    # Both measured at this model's size (256 parameters): 1e-5 and 4e-5 pool to 2e-5.
    card = finding(
        "sft_full",
        lr=1e-5,
        measured_at=256.0,
        more=[{"learning_rate": 4e-5, "model_params": 256.0}],
    )
    hyper, how = hyper_for(card, state)
    assert hyper.learning_rate == 2e-5 and "geometric mean" in how and "P0 (p0)" in how


def test_every_reported_learning_rate_reaches_the_card_with_its_model_size():
    corpus = load_corpus()
    with_lr = [
        p
        for p in corpus
        if p.technique and p.technique.key == "sft_full" and p.technique.recipe.learning_rate
    ]
    lead = with_lr[-1]
    relevance = {p.id: 1.0 if p is lead else 0.1 for p in corpus}
    findings = rank_techniques(corpus, relevance, {p.id: 0 for p in corpus})
    card = next(f for f in findings if f.key == "sft_full")
    assert card.learning_rates[0].paper.id == lead.id
    assert {e.paper.id for e in card.learning_rates} == {p.id for p in with_lr}
    for evidence in card.learning_rates:
        paper = next(p for p in with_lr if p.id == evidence.paper.id)
        assert evidence.learning_rate == paper.technique.recipe.learning_rate
        assert evidence.model_params == paper.technique.recipe.model_params
    assert "learning_rate" not in card.recipe and "model_params" not in card.recipe


def _failed_state(tmp_path, kind):
    plan = sft_plan(status="failed")
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


def test_a_data_failure_without_a_run_switches_instead_of_crashing(tmp_path):
    state, plan = _failed_state(tmp_path, "oom")
    state["runs"] = []
    new, kind = refine(state, plan)
    assert kind == "switch" and new.technique == "sft_lora"


def _done_state(tmp_path, score, findings=None, **categories):
    evaluations = [evaluation(0, 0.0), evaluation(1, score, **categories)]
    best = BestModel(checkpoint="ckpt-1", strict=score, lenient=score, label="iter-1", iteration=1)
    return base_state(
        tmp_path,
        findings=findings or [finding("sft_full")],
        plan=sft_plan(),
        baseline=evaluations[0],
        evaluations=evaluations,
        best=best,
    )


def test_gain_continues_from_new_best_and_target_stops(tmp_path):
    state = _done_state(tmp_path, 0.6, format=40)
    decision, new = decide(state, 5, None)
    assert decision.next == "data_engineer" and new.data_recipe == "plain"
    assert new.init_checkpoint == "ckpt-1" and new.data_seed != state["plan"].data_seed
    assert "validation 0.00 → 0.60" in new.reason
    # A node of the experiment tree: it grows from the best iteration by a named move.
    assert (new.parent, new.move) == (1, "continue")
    state["best"] = state["best"].model_copy(update={"strict": 0.96})
    decision, _ = decide(state, 5, None)
    assert decision.stop_reason == StopReason.TARGET_MET
    # On a split where one answer given to everything scores 0.96, 0.96 is no result: the run
    # goes on; above that floor the target is met.
    floor = {"answer": "no", "validation": 0.96, "validation_n": 100}
    state["constant_answer"] = ConstantAnswer(**floor)
    decision, new = decide(state, 5, None)
    assert decision.stop_reason is None and new is not None
    # The routing model is told the floor too.
    assert "always answering 'no' scores 0.96 on validation" in digest(state, 5, None, "train")
    state["best"] = state["best"].model_copy(update={"strict": 0.97})
    decision, _ = decide(state, 5, None)
    assert decision.stop_reason == StopReason.TARGET_MET
    state["best"] = state["best"].model_copy(update={"strict": 0.6})
    state["run_options"] = RunOptions(max_iterations=1)
    decision, _ = decide(state, 5, None)
    assert decision.stop_reason == StopReason.BUDGET_ITERATIONS


def test_a_dominant_specific_miss_changes_the_data(tmp_path):
    state = _done_state(tmp_path, 0.6, off_by_power_of_ten=30, wrong=10)
    new, kind = refine(state, state["plan"])
    assert kind == "target_errors" and new.data_recipe == "targeted"
    # Only the data (and the rate, by the rule tested below) changes.
    before = state["plan"].hyper
    assert new.hyper == before.with_changes(learning_rate=new.hyper.learning_rate)
    assert "75% of its misses are 'off_by_power_of_ten'" in new.reason
    # A gain whose misses are one kind of question's single label aims at that kind instead.
    state = _done_state(tmp_path, 0.6, label_collapse=30, wrong=10)
    new, kind = refine(state, state["plan"])
    assert kind == "target_errors" and new.data_recipe == "collapsed_kind"
    # Misses gathered in a few kinds of question give those kinds more of the rows.
    state = _done_state(tmp_path, 0.6, unlearned_kind=30, wrong=10)
    kinds = ["how many h are in # min?", "how many min are in # h?"]
    state["evaluations"][1].unlearned_kinds = kinds
    new, kind = refine(state, state["plan"])
    assert kind == "target_errors" and new.data_recipe == "unlearned_kind"
    assert "75% of its misses are 'unlearned_kind'" in new.reason
    assert "in 2 kinds of question such as 'how many h are in # min?'" in new.reason
    assert "the kinds of question it misses a larger share" in new.reason
    state["evaluations"][1].unlearned_kinds = kinds[1:]
    new, _ = refine(state, state["plan"])
    assert "in one kind of question, 'how many min are in # h?'" in new.reason
    # Misordered lists are named but not aimed at: on sort_list that was measured to hurt.
    state = _done_state(tmp_path, 0.6, misordered=12, wrong_items=4)
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.data_recipe == "plain"
    # Merely wrong answers name no skill to target: fresh plain data instead.
    state = _done_state(tmp_path, 0.6, wrong=40)
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.data_recipe == "plain"
    assert "from the new best on fresh data" in new.reason
    # A folder that gave every row it holds has none fresh to give: the reason says so.
    data = str(tmp_path / "rows")
    state["plan"] = state["plan"].model_copy(update={"dataset_path": data})
    state["datasets"] = [_data_card(data, 320, 196)]
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and "fresh" not in new.reason
    assert "from the new best on the same 196 rows again, every row its source holds" in new.reason
    state["datasets"] = [_data_card(data, 320, 320)]
    assert "from the new best on fresh data" in refine(state, state["plan"])[0].reason
    # A stretch on aimed rows goes on with its recipe, and the reason says so.
    state["plan"] = state["plan"].model_copy(update={"data_recipe": "targeted"})
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.data_recipe == "targeted"
    assert "on fresh rows of the same recipe, targeted" in new.reason
    state["plan"] = state["plan"].model_copy(update={"data_recipe": "plain"})
    # Unless most of a task folder's free-form misses resemble each other: one pattern to aim at.
    shout = FailureSample(
        prompt="Shout this: 'good morning'",
        answer="GOOD MORNING",
        completion="Good morning",
        category="wrong",
    )
    alike = MissCluster(
        size=24,
        share=0.6,
        example=shout,
        prompts=[shout.prompt] * 24,
        near_items=30,
        near_accuracy=0.2,
        rest_accuracy=0.8,
        unlearned=True,
    )
    state["evaluations"][1].miss_clusters = [alike]
    new, kind = refine(state, state["plan"])
    assert kind == "target_errors" and new.data_recipe == "targeted"
    assert "100% of its misses are 'wrong', 60% of them alike, such as" in new.reason
    assert "\"Shout this: 'good morning'\" → 'Good morning'" in new.reason
    assert "it gets 20% of 30 such questions right against 80% of the rest" in new.reason
    # Scattered free-form misses (the largest group under half of them) stay plain, and so do
    # alike misses where the model is no weaker than elsewhere (the group is the task itself).
    for scattered in ({"size": 16, "share": 0.4}, {"unlearned": False}):
        state["evaluations"][1].miss_clusters = [alike.model_copy(update=scattered)]
        new, kind = refine(state, state["plan"])
        assert kind == "continue" and new.data_recipe == "plain"


def test_a_gain_of_any_size_keeps_the_schedules_rate(tmp_path):
    state = _done_state(tmp_path, 0.6, wrong=40)
    state["plan"] = sft_plan(
        hyper=Hyper(adapter="full", learning_rate=4e-5, max_steps=40, batch_size=8)
    )
    # +0.60 on validation, rows new every stretch: the schedule anneals its own peak (a raise
    # after a large gain was measured paired and gained nothing: graph/rates.py).
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.move == "continue"
    assert new.hyper.learning_rate == 4e-5
    assert "on the same schedule (it anneals the rate)" in new.reason
    # A small gain (0.55 → 0.60) does the same.
    state["evaluations"].insert(1, evaluation(0, 0.55).model_copy(update={"label": "iter-0b"}))
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.hyper.learning_rate == 4e-5
    assert "on the same schedule" in new.reason


def _ended_at(record, loss):
    """A finished run whose last training step's loss was `loss`."""
    result = record.result.model_copy(update={"metrics": {"final_loss": loss}})
    return record.model_copy(update={"result": result})


def _rereading(state, rows=332):
    """`state` on a task folder of `rows` (digit sums' 332): fewer than 240 steps read."""
    return {
        **state,
        "task_dir": "folder",
        "folder_survey": FolderSurvey(rows=rows, surveyed_rows=rows),
    }


def test_a_label_task_folder_opens_its_schedule_at_the_underfit_ceiling(tmp_path):
    def opening(**extra):
        state = base_state(
            tmp_path,
            baseline=evaluation(0, 0.0),
            evaluations=[evaluation(0, 0.0)],
            findings=[finding("sft_full")],
        )
        return decide({**_rereading(state), **extra}, 3, None)[1]

    # compare_numbers: yes or no, always "yes" scores 0.40, 332 rows for a 240-step schedule.
    floor = ConstantAnswer(answer="yes", validation=0.4, validation_n=60)
    plan = opening(constant_answer=floor)
    assert plan.hyper.learning_rate == 1.5e-4 and plan.schedule_steps == 240
    assert "its answers are a small label set, so it opens at the under-fit ceiling" in (
        plan.reason
    )
    # The cards' rate stays in the reason, and what replaced it follows it.
    card_rate = opening().hyper.learning_rate
    assert card_rate <= LR_BOUNDS["full"][1] and f"lr {card_rate:g} from" in plan.reason
    assert plan.reason.index(f"lr {card_rate:g} from") < plan.reason.index("under-fit ceiling")
    # A folder holding more rows than the schedule reads opens there too: the prior is a
    # plateau of learning a label set, not of re-reading rows.
    plenty = opening(
        constant_answer=floor, folder_survey=FolderSurvey(rows=5000, surveyed_rows=800)
    )
    assert plenty.hyper.learning_rate == 1.5e-4
    # Not on open answers, a bundled task's generated rows, nor a short schedule.
    for unclimbed in (
        opening(),
        opening(constant_answer=floor, folder_survey=None),
        opening(constant_answer=floor, run_options=RunOptions(max_iterations=2)),
    ):
        assert unclimbed.hyper.learning_rate == card_rate
        assert "under-fit ceiling" not in unclimbed.reason


def test_a_stretch_that_has_not_fit_its_rows_climbs_past_the_bound_on_a_long_schedule(tmp_path):
    state = _rereading(_done_state(tmp_path, 0.6, wrong=40))
    rate = Hyper(adapter="full", learning_rate=6e-5, max_steps=40, batch_size=8)
    state["plan"] = sft_plan(hyper=rate, schedule_steps=240)
    # Digit sums: the first 40 steps at 6e-5 ended at training loss 0.81.
    state["runs"] = [_ended_at(_trained(1, length=240), 0.81)]
    new, kind = refine(state, state["plan"])
    assert kind == "raise_lr" and new.hyper.learning_rate == 1.5e-4
    assert "its training loss ended at 0.81 (at least 0.5: it has not fit the rows" in new.reason
    assert (new.schedule_offset, new.schedule_steps) == (40, 240)
    # Rows fit (phrase_edits ended its first stretch at 0.03): the bound stands.
    state["runs"] = [_ended_at(_trained(1, length=240), 0.03)]
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.hyper.learning_rate == 6e-5
    # The ceiling was measured on 240-step schedules, not on short ones.
    state["plan"] = sft_plan(hyper=rate, schedule_steps=80)
    state["runs"] = [_ended_at(_trained(1, length=80), 0.81)]
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.hyper.learning_rate == 6e-5
    # Nor on rows that are new every stretch (rule rows, a generator's): their loss is on rows
    # the model never saw.
    state["plan"] = sft_plan(hyper=rate, schedule_steps=240, data_recipe="recombined")
    state["runs"] = [_ended_at(_trained(1, length=240), 0.81)]
    new, kind = refine(state, state["plan"])
    assert new.hyper.learning_rate == 6e-5 and "not fit the rows" not in new.reason
    for fresh in ({"folder_survey": None}, _rereading(state, rows=2000)):
        plain = {**state, **fresh, "plan": sft_plan(hyper=rate, schedule_steps=240)}
        assert refine(plain, plain["plan"])[0].hyper.learning_rate == 6e-5
    # A stretch held within noise of the best on a long schedule climbs too.
    state = _rereading(_held_state(tmp_path, best_iteration=4, score=0.78))
    state["plan"] = state["plan"].model_copy(update={"hyper": rate})
    state["runs"][-1] = _ended_at(state["runs"][-1], 0.79)
    new, kind = refine(state, state["plan"])
    assert kind == "hold" and new.hyper.learning_rate == 1.5e-4
    assert "its schedule's peak is raised to 0.00015" in new.reason
    # After a gain, a peak the rule raised stays there, its rows fit by now or not.
    state = _rereading(_done_state(tmp_path, 0.6, wrong=40))
    state["plan"] = sft_plan(hyper=rate.with_changes(learning_rate=1.5e-4), schedule_steps=240)
    for loss in (0.2, 0.81):
        state["runs"] = [_ended_at(_trained(1, length=240), loss)]
        new, kind = refine(state, state["plan"])
        assert kind == "continue" and new.hyper.learning_rate == 1.5e-4
        assert "on the same schedule (it anneals the rate)" in new.reason
    # Not on a rate halved after a stall, nor on LoRA (no ceiling was measured for it), nor
    # after the schedule's last stretch (the next starts afresh, maybe too short for it).
    state["runs"] = [_ended_at(_trained(1, length=240), 0.81)]
    lora = Hyper(adapter="lora", learning_rate=1e-3, max_steps=40, batch_size=8)
    for unclimbed in (
        sft_plan(hyper=rate, schedule_steps=240, lr_halved=True),
        sft_plan(hyper=lora, schedule_steps=240),
        sft_plan(hyper=rate, schedule_offset=200, schedule_steps=240),
    ):
        state["plan"] = unclimbed
        new, kind = refine(state, state["plan"])
        assert new.hyper.learning_rate == unclimbed.hyper.learning_rate
        assert "has not fit the rows" not in new.reason
    # A routing model or agent may name rates up to a climbed plan's own, never past the ceiling.
    assert rate_range("full", 1.5e-4) == (1e-6, 1.5e-4)
    assert rate_range("full", 3e-4) == rate_range("full") == LR_BOUNDS["full"]
    assert rate_range("lora", 2e-3) == LR_BOUNDS["lora"]


def _trained(iteration, technique="sft_full", adapter="full", offset=0, length=120, steps=40):
    result = TrainingResult(status="ok", checkpoint=f"ckpt-{iteration}", wall_s=1.0)
    spec = {
        "adapter": adapter,
        "max_steps": steps,
        "schedule_offset": offset,
        "schedule_steps": length,
    }
    return TrainingRecord(iteration=iteration, technique=technique, spec=spec, result=result)


def test_continuations_walk_one_schedule_other_moves_start_one(tmp_path):
    state = _done_state(
        tmp_path, 0.6, wrong=40, findings=[finding("sft_full"), finding("sft_lora")]
    )
    state["run_options"] = RunOptions(max_iterations=3, train_steps=40)
    state["runs"] = [_trained(1)]
    new, kind = refine(state, state["plan"])
    # The next 40 steps of iteration 1's 120-step schedule, from its Adam moments.
    assert kind == "continue"
    assert (new.schedule_offset, new.schedule_steps, new.optimizer_from) == (40, 120, 1)
    assert "steps 40–80 of a 120-step schedule, from iteration 1's optimiser state" in new.reason
    # A collapse retrains on balanced rows: still the same lineage, so the schedule goes on.
    state["evaluations"][-1] = state["evaluations"][-1].model_copy(update={"collapse": 0.9})
    new, kind = refine(state, state["plan"])
    assert kind == "rebalance" and (new.schedule_offset, new.optimizer_from) == (40, 1)
    # A LoRA lineage goes on with the schedule, but a new adapter has no moments to resume.
    state["runs"] = [_trained(1, adapter="lora")]
    state["plan"] = sft_plan(
        technique="sft_lora",
        hyper=Hyper(adapter="lora", learning_rate=2e-4, max_steps=40, batch_size=8),
    )
    state["runs"] = [_trained(1, technique="sft_lora", adapter="lora")]
    state["evaluations"][-1] = state["evaluations"][-1].model_copy(update={"collapse": None})
    new, _ = refine(state, state["plan"])
    assert (new.schedule_offset, new.optimizer_from) == (40, None)
    # Past its schedule's end a lineage starts a new schedule over the iterations left.
    state["runs"] = [_trained(1, technique="sft_lora", adapter="lora", offset=80)]
    new, _ = refine(state, state["plan"])
    assert (new.schedule_offset, new.schedule_steps) == (0, 2 * 40)
    # A switch of technique starts afresh.
    state["plan"] = sft_plan()
    state["runs"] = [_trained(1)]
    state["evaluations"] = [evaluation(0, 0.6), evaluation(1, 0.6)]
    state["plan"] = sft_plan(lr_halved=True)
    new, kind = refine(state, state["plan"])
    assert kind == "switch" and (new.schedule_offset, new.optimizer_from) == (0, None)


def test_a_collapse_rebalances_the_data_then_switches_technique(tmp_path):
    findings = [finding("sft_full"), finding("sft_lora")]
    state = _done_state(tmp_path, 0.2, findings=findings, wrong=80)
    state["answer_shift"] = AnswerShift(answer="a", train_share=0.9, validation_share=0.25)
    state["evaluations"][-1] = state["evaluations"][-1].model_copy(update={"collapse": 0.9})
    new, kind = refine(state, state["plan"])
    # First the data changes: every answer equally often, at half the rate.
    assert kind == "rebalance" and new.technique == "sft_full" and new.data_recipe == "balanced"
    assert new.hyper.learning_rate == state["plan"].hyper.learning_rate / 2
    assert "collapsed: 90% of validation answers are one and the same" in new.reason
    # Collapsed again on balanced rows: the technique goes.
    state["plan"] = state["plan"].model_copy(update={"data_recipe": "balanced"})
    new, kind = refine(state, state["plan"])
    assert kind == "switch" and new.technique == "sft_lora" and new.move == "switch"


def test_a_first_collapse_on_balanced_answers_continues_then_a_second_rebalances(tmp_path):
    state = _done_state(tmp_path, 0.28, findings=[finding("sft_full")], wrong=72)
    state["run_options"] = RunOptions(max_iterations=3, train_steps=40)
    state["runs"] = [_trained(1)]
    state["plan"] = sft_plan(schedule_steps=120)
    state["evaluations"][-1] = state["evaluations"][-1].model_copy(update={"collapse": 1.0})
    new, kind = refine(state, state["plan"])
    # Training answers match validation's: the prior comes first; the schedule goes on as it was.
    assert kind == "continue" and new.data_recipe == "plain"
    assert new.hyper.learning_rate == state["plan"].hyper.learning_rate
    assert (new.schedule_offset, new.schedule_steps, new.optimizer_from) == (40, 120, 1)
    assert "answers its prior first" in new.reason
    # A first stretch that has not fit its rows on a long schedule climbs as it goes on (digit
    # sums' ended at 0.81).
    runs = [_ended_at(_trained(1, length=240), 0.81)]
    long = {**_rereading(state), "plan": sft_plan(schedule_steps=240), "runs": runs}
    climbed, kind = refine(long, long["plan"])
    assert kind == "raise_lr" and climbed.hyper.learning_rate == 1.5e-4
    assert "answers its prior first" in climbed.reason and "not fit the rows" in climbed.reason
    # So does one whose loss is low only because its answers are few: one answer to all of
    # validation at a yes-or-no prior's loss (compare_numbers' stretches ended at 0.18 to 0.29).
    prior = {**long, "runs": [_ended_at(_trained(1, length=240), 0.23)]}
    climbed, kind = refine(prior, prior["plan"])
    assert kind == "raise_lr" and climbed.hyper.learning_rate == 1.5e-4
    assert (
        "one answer to 100% of validation at training loss 0.23 (the loss of its answers' "
        "prior: it has not fit the rows its schedule reads again), so its schedule's peak is "
        "raised to 0.00015"
    ) in climbed.reason
    # Not one that fit its rows all the same (a loss under a two-answer prior's).
    fit = {**long, "runs": [_ended_at(_trained(1, length=240), 0.02)]}
    kept, kind = refine(fit, fit["plan"])
    assert kind == "continue" and kept.hyper.learning_rate == fit["plan"].hyper.learning_rate
    # It collapsed again on the continued schedule: now the data and the rate change.
    state["evaluations"].append(evaluation(2, 0.28).model_copy(update={"collapse": 1.0}))
    second = new.model_copy(update={"status": "done"})
    state["plan"] = second
    new, kind = refine(state, second)
    assert kind == "rebalance" and new.hyper.learning_rate == second.hyper.learning_rate / 2
    # Unless it took the best's place: by rising (choice_category at seed 0: one letter in 100%,
    # then 89% of answers, 0.15 → 0.18), still learning the label set, so the schedule goes on.
    shrank = evaluation(2, 0.33).model_copy(update={"collapse": 0.89})
    state["evaluations"][-1] = shrank
    state["best"] = state["best"].model_copy(update={"iteration": 2, "strict": 0.33})
    state["runs"].append(_trained(2, offset=40))
    again, kind = refine(state, second)
    assert kind == "continue" and again.data_recipe == "plain"
    assert again.hyper.learning_rate == second.hyper.learning_rate
    assert (again.schedule_offset, again.optimizer_from) == (80, 2)
    assert (
        "89% of validation answers are one and the same (validation 0.28 → 0.33), but its "
        "training data over-represents no answer against validation and it went on with "
        "iteration 1's schedule, which gave one answer to 100% of validation: a model"
    ) in again.reason
    # Or by the evaluator's phase hold, lower than its parent (choice_category at seed 1: one
    # letter in 80%, then 100%, 0.35 → 0.15): it goes on from the collapsed model itself.
    state["evaluations"][1] = evaluation(1, 0.35).model_copy(update={"collapse": 0.8})
    state["evaluations"][-1] = evaluation(2, 0.15).model_copy(update={"collapse": 1.0})
    held = HeldPeak(label="iter-1", strict=0.35, stderr=0.05, phase="p")
    update = {"strict": 0.15, "held": held, "checkpoint": "ckpt-2"}
    state["best"] = state["best"].model_copy(update=update)
    again, kind = refine(state, second)
    assert kind == "continue" and (again.init_checkpoint, again.optimizer_from) == ("ckpt-2", 2)
    assert (
        "(validation 0.35 → 0.15), but" in again.reason and "to 80% of validation:" in again.reason
    )
    # On rows already balanced by answer the collapse is no phase: a switch (here, to nothing).
    balanced = second.model_copy(update={"data_recipe": "balanced"})
    none, why = refine(state, balanced)
    assert none is None and why.endswith(
        "collapsed: 100% of validation answers are one and "
        "the same (validation 0.35 → 0.15) and no untried technique applies"
    )
    state["evaluations"][-1] = evaluation(2, 0.28).model_copy(update={"collapse": 1.0})
    # At the schedule's end there is nothing left to continue: the data changes at once.
    state["evaluations"].pop()
    state["plan"] = sft_plan(schedule_steps=40)
    _, kind = refine(state, state["plan"])
    assert kind == "rebalance"


def test_grpo_starts_from_the_sft_checkpoint_once_sft_stops_improving(tmp_path):
    plan = sft_plan(
        iteration=3,
        technique="sft_lora",
        init_checkpoint="ckpt-2",
        hyper=Hyper(adapter="lora", learning_rate=2e-4, max_steps=40, batch_size=8),
        lr_halved=True,
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
        "recipe": "grpo",
        "size": new.data_size,
        "seed": new.data_seed,
    }


def _step(number, iteration, wall_s):
    return TrajectoryRecord(
        step=number,
        agent="trainer",
        action="train",
        signature=f"s{number}",
        status="ok",
        iteration=iteration,
        started_at=0.0,
        wall_s=wall_s,
    )


def test_an_iteration_that_cannot_fit_the_budget_is_not_started(tmp_path):
    state = _done_state(tmp_path, 0.6, format=40)
    state["trajectory"] = [_step(n, 1 if n > 2 else 0, 100.0) for n in range(1, 6)]
    state["budget"] = 8
    decision, _ = decide(state, 6, None)
    assert decision.stop_reason == StopReason.BUDGET_STEPS
    assert "3 of 8 steps left: another iteration needs 4" in decision.reason
    # Three steps of iteration 1 took 300 s; 250 s left cannot hold another.
    state["budget"], state["max_time_s"] = 300, 750.0
    decision, _ = decide(state, 6, None)
    assert decision.stop_reason == StopReason.BUDGET_TIME and "300s on average" in decision.reason
    state["max_time_s"] = 2000.0
    decision, _ = decide(state, 6, None)
    assert decision.next == "data_engineer"


def test_an_iteration_builds_the_rows_its_steps_will_draw(tmp_path):
    state = base_state(tmp_path, run_options=RunOptions(train_steps=10, batch_size=8))
    state["baseline"] = evaluation(0, 0.0)
    state["findings"] = [finding("sft_full"), finding("grpo", "grpo")]
    _, plan = decide(state, 3, None)
    # 10 steps × batch 8: 80 rows, not the 800 --train-size allows (and never drawn).
    assert plan.hyper.rows_seen == 80 and plan.data_size == 80
    state["run_options"] = RunOptions(train_steps=100, batch_size=8, train_size=200)
    _, plan = decide(state, 3, None)
    assert plan.data_size == 200  # --train-size stays the ceiling: 4 epochs, on purpose


def test_a_continuation_spec_resumes_its_parents_optimiser_state(tmp_path):
    state = base_state(tmp_path, run_id="r")
    plan = sft_plan(
        iteration=2,
        dataset_path=str(tmp_path / "data"),
        schedule_offset=40,
        schedule_steps=120,
        optimizer_from=1,
    )
    spec = spec_for(state, plan)
    assert spec.optimizer_state == str(tmp_path / "models" / "iter-1" / "optimizer.pt")
    assert (spec.schedule_offset, spec.schedule_steps, spec.save_optimizer) == (40, 120, True)
    assert spec.output_dir == str(tmp_path / "models" / "iter-2")
    lora = plan.model_copy(
        update={
            "hyper": Hyper(adapter="lora", learning_rate=2e-4, max_steps=40, batch_size=8),
            "optimizer_from": None,
        }
    )
    spec = spec_for(state, lora)
    assert spec.optimizer_state is None and not spec.save_optimizer
    # The last iteration the run may hold saves no moments: nothing can continue from them.
    state["run_options"] = RunOptions(max_iterations=2)
    assert not spec_for(state, plan).save_optimizer
    state["run_options"] = RunOptions()
    # Data-parallel processes share the step's batch; on a CPU box one process is the default.
    assert spec.num_processes == 1 and spec.batch_size == 8
    state["run_options"] = RunOptions(num_processes=2)
    spec = spec_for(state, plan)
    assert (spec.num_processes, spec.batch_size) == (2, 4)
    # A stretch that found no state to resume says so, and why its writer left none.
    from postlab.agents.trainer import _finished
    from postlab.records.artifacts import TrainingResult
    from postlab.tools.training import schedule

    state["run_options"] = RunOptions()
    spec = spec_for(state, plan)
    note = schedule._failure_note(Path(spec.optimizer_state))
    note.parent.mkdir(parents=True)
    note.write_text("OSError: [Errno 28] No space left on device")
    fresh = TrainingResult(status="ok", checkpoint="c", metrics={"resumed_optimizer": 0.0})
    summary = _finished(state, _NoMemory(), plan, spec, fresh, "local").outcome.summary
    assert (
        "iteration 1's optimiser state was missing (OSError: [Errno 28] No space left on "
        "device): this stretch kept its schedule but began from fresh moments"
    ) in summary
    resumed = fresh.model_copy(update={"metrics": {"resumed_optimizer": 1.0}})
    assert (
        "missing" not in _finished(state, _NoMemory(), plan, spec, resumed, "local").outcome.summary
    )


def _above_500_folder(folder: Path, train: list[int], valid: list[int] | None) -> Path:
    """A task folder asking whether numbers are above 500 (valid.jsonl only when given)."""
    folder.mkdir(exist_ok=True)

    def rows(numbers):
        return "\n".join(
            json.dumps({"prompt": f"Is {n} above 500?", "answer": "yes" if n > 500 else "no"})
            for n in numbers
        )

    (folder / "train.jsonl").write_text(rows(train))
    if valid is not None:
        (folder / "valid.jsonl").write_text(rows(valid))
    (folder / "eval.jsonl").write_text(rows([801, 802, 803, 301, 302, 303]))
    return folder


def _opening_plan(state, shift):
    state.update(
        baseline=evaluation(0, 0.0),
        evaluations=[evaluation(0, 0.0)],
        findings=[finding("sft_full")],
        answer_shift=shift,
    )
    return decide(state, 3, None)[1]


def test_a_training_prior_unlike_validations_opens_on_balanced_rows(tmp_path):
    # Nine training answers in ten are "yes"; validation and test are balanced.
    train = [*range(600, 690), *range(100, 110)]
    folder = _above_500_folder(tmp_path / "skewed", train, [701, 702, 703, 201, 202, 203])
    state = base_state(tmp_path, task_dir=str(folder))
    shift = training_answer_shift(state)
    assert (shift.answer, shift.train_share, shift.validation_share) == ("yes", 0.9, 0.5)
    assert not shift.prior_unknown
    plan = _opening_plan(state, shift)
    assert plan.data_recipe == "balanced"
    assert "training answers are 90% 'yes' against 50% in validation" in plan.reason
    # A task whose training answers look like validation's opens on plain rows.
    assert training_answer_shift(base_state(tmp_path)) is None


def test_a_skewed_training_file_without_validation_is_a_shift_against_an_unknown_prior(
    tmp_path,
):
    # No valid.jsonl: validation is lent from the training file and shares its 9-in-10 skew.
    train = [*range(600, 780), *range(100, 120)]
    folder = _above_500_folder(tmp_path / "above_500", train, None)
    state = base_state(tmp_path, task_dir=str(folder))
    shift = training_answer_shift(state)
    assert shift.prior_unknown and shift.answer == "yes" and shift.train_share >= 0.85
    assert shift.validation_share >= 0.75  # the lent slice is as skewed as training
    plan = _opening_plan(state, shift)
    assert plan.data_recipe == "balanced"
    assert "cannot say whether test holds that skew" in plan.reason
    # The routing model is told too, and what its SFT data defaults to.
    assert "cannot say whether test holds that skew" in digest(state, 3, None, "train")
    # The floor is weighed as validation is: one answer is chance for two labels, not the skew.
    floor = constant_answer_floor(state)
    assert floor.answer == "yes" and floor.validation == 0.5
    # A stalled first iteration restarts at half the rate, still on balanced rows.
    stalled = evaluation(1, 0.0)
    state.update(
        plan=plan.model_copy(update={"status": "done"}),
        evaluations=[*state["evaluations"], stalled],
    )
    state["best"] = None
    _, retry = decide(state, 6, None)
    assert retry.move == "lower_lr" and retry.data_recipe == "balanced"
    # Balanced training answers in the same folder are no shift at all.
    _above_500_folder(folder, [*range(600, 700), *range(100, 200)], None)
    assert training_answer_shift(base_state(tmp_path, task_dir=str(folder))) is None


def test_lent_validation_counts_every_answer_equally_even_from_balanced_training(tmp_path):
    # Half "yes" in training, no valid.jsonl: no shift, yet the lent slice's shares are a few
    # items off training's (compare_numbers: 60% "yes" from a 50% file), and one answer to
    # everything must score chance there, not its label's share of the slice.
    folder = _above_500_folder(tmp_path / "lent", [*range(600, 700), *range(100, 200)], None)
    state = base_state(tmp_path, task_dir=str(folder))
    assert training_answer_shift(state) is None
    task = load_task(None, folder)
    assert task.validation_lent
    answers = [example.answer for example in task.validation_examples()]
    assert answers.count("yes") != answers.count("no")  # the slice is off balance
    floor = constant_answer_floor(state)
    assert floor.validation == 0.5
    # Validation the folder ships is its own evidence: counted item by item.
    valid = [701, 702, 703, 201, 202]
    shipped = _above_500_folder(tmp_path / "shipped", [*range(600, 700), *range(100, 200)], valid)
    assert constant_answer_floor(base_state(tmp_path, task_dir=str(shipped))).validation in (
        0.4,
        0.6,
    )


def surveyed_state(tmp_path: Path, folder: Path, **extra) -> dict:
    """A run's state on a task folder, surveyed as preparing the run surveys it."""
    task = load_task(None, folder)
    survey = survey_folder(check_trainable(task, RunOptions().batch_size), RunOptions().train_size)
    return base_state(tmp_path, task_dir=str(folder), folder_survey=survey, **extra)


def test_a_short_folder_under_number_rules_opens_on_the_rows_they_compute(tmp_path):
    # 60 rows for a schedule of six stretches of 40 steps of 8 (1,920 rows): every row a sum.
    plan = _opening_plan(surveyed_state(tmp_path, sums_folder(tmp_path / "s", 60)), None)
    assert (plan.move, plan.data_recipe) == ("open", "recombined")
    assert "its folder holds 60 rows, fewer than the 1920 its schedule reads" in plan.reason
    assert "60 of them follow number rules (number 1 + number 2" in plan.reason
    # 400 rows fill a stretch (320) but the schedule would read each more than four times.
    enough_for_one = surveyed_state(tmp_path, sums_folder(tmp_path / "400", 400))
    assert _opening_plan(enough_for_one, None).data_recipe == "recombined"
    # A folder with rows for the whole schedule opens on its own rows; one row fewer does not.
    exactly = surveyed_state(tmp_path, sums_folder(tmp_path / "1920", 1920))
    assert _opening_plan(exactly, None).data_recipe == "plain"
    one_short = surveyed_state(tmp_path, sums_folder(tmp_path / "1919", 1919))
    assert _opening_plan(one_short, None).data_recipe == "recombined"
    # So does a short folder whose answers no number rule computes (balanced yes and no), and
    # rows made by rules are no recipe a chat model may name there.
    labels = surveyed_state(
        tmp_path, _above_500_folder(tmp_path / "labels", list(range(470, 530)), [499, 501])
    )
    assert _opening_plan(labels, None).data_recipe == "plain"
    assert "recombined" not in usable_recipes(labels, "sft_full")
    assert "recombined" in usable_recipes(one_short, "sft_full")
    # The survey counts what a training set keeps: 60 sums plus 40 copies of test and
    # validation rows are still 60 rows.
    copies = sums_folder(tmp_path / "copies", 60)
    held_out = (copies / "valid.jsonl").read_text() + "\n" + (copies / "eval.jsonl").read_text()
    with (copies / "train.jsonl").open("a") as train:
        train.write("\n" + held_out + "\n" + held_out)
    assert surveyed_state(tmp_path, copies)["folder_survey"].rows == 60


class _NoMemory:
    """Memory that keeps nothing: the evaluator's writes and reads go nowhere."""

    def add(self, *args, **kwargs):
        return None

    def add_many(self, *args, **kwargs):
        return None

    def get(self, *args, **kwargs):
        return []


def test_validation_lent_from_a_skewed_training_file_is_scored_balanced(tmp_path, monkeypatch):
    from postlab.agents import evaluator
    from postlab.records.steps import Directive
    from postlab.tools.evaluation.scoring import score

    train = [*range(600, 780), *range(100, 120)]
    folder = _above_500_folder(tmp_path / "above_500", train, None)
    state = base_state(tmp_path, task_dir=str(folder))
    asked = {}

    def constant_yes(checkpoint, task, splits, balanced=(), **kwargs):
        asked["balanced"] = balanced
        results = {}
        for split in splits:
            examples = task.validation_examples() if split == "validation" else task.test_examples()
            results[split] = score(
                task, examples, ["yes"] * len(examples), "m", balance_labels=split in balanced
            )
        return results

    monkeypatch.setattr(evaluator, "evaluate_checkpoint", constant_yes)
    baseline = Directive(agent="evaluator", action="baseline", reason="measure")
    update = evaluator.evaluate(state, baseline, _NoMemory()).update
    assert asked["balanced"] == ("validation",)
    record = update["baseline"]
    # A constant "yes" gets chance credit, not the 90% the skewed slice would give it.
    assert record.balanced_by_label and record.strict == 0.5
    assert update["answer_shift"].prior_unknown


def _held_state(tmp_path, best_iteration, score, **misses):
    plan = sft_plan(iteration=4, parent=3, schedule_offset=120, schedule_steps=240)
    evaluations = [evaluation(0, 0.0), evaluation(3, 0.79), evaluation(4, score, **misses)]
    best = BestModel(
        checkpoint=f"ckpt-{best_iteration}",
        strict=evaluations[-1 if best_iteration == 4 else 1].strict,
        lenient=0.0,
        label=f"iter-{best_iteration}",
        iteration=best_iteration,
    )
    runs = [_trained(3, offset=80, length=240), _trained(4, offset=120, length=240)]
    return _stretch_state(tmp_path, plan, evaluations, best, runs)


def test_a_dip_is_judged_on_the_same_items_when_both_checkpoints_misses_are_known(tmp_path):
    state = _held_state(tmp_path, best_iteration=3, score=0.78)
    items = [f"question {index}" for index in range(30)]
    # iter-3 got the first 11 of 30 right (0.37); the evaluator sees it before iter-4.
    peak = state["evaluations"][1].model_copy(update={"strict": 11 / 30, "n": 30})
    state["evaluations"] = [state["evaluations"][0], peak.model_copy(update={"missed": items[11:]})]
    state["best"] = state["best"].model_copy(update={"strict": 11 / 30, "n": 30})

    def scored(missed, balanced=False):
        strict = (30 - len(missed)) / 30
        return SimpleNamespace(
            strict=strict,
            n=30,
            collapse=0.0,
            prompts=items,
            missed_prompts=missed,
            balanced_by_label=balanced,
        )

    # 0.27 by missing five it had right and getting two right it missed: a churn of seven items
    # with a net loss of three is chance (3 − 1 ≤ 1.645 × √7), though it is past one standard
    # error (0.088).
    churned = scored(items[:5] + items[13:])
    held = schedule_hold(state, churned)
    assert (held.label, held.broken, held.fixed) == ("iter-3", 5, 2)
    assert "it missed 5 that iter-3 got right and got 2 right that iter-3 missed" in held.describe()
    # A last bet is kept only if it beats the best: the same churn is not held for it.
    last = {**state, "plan": state["plan"].model_copy(update={"last_bet": True})}
    assert schedule_hold(last, churned) is None
    # Nor for a stretch that re-read the facts the model knows: more passes, no more data.
    known = {**state, "plan": state["plan"].model_copy(update={"known_only": True})}
    assert schedule_hold(known, churned) is None
    # Nor for one that read every row its folder holds: 196 clean rows where it asked for 320.
    reread = {**state, "plan": state["plan"].model_copy(update={"dataset_path": "data/w"})}
    reread["datasets"] = [_data_card("data/w", 320, 320)]
    assert schedule_hold(reread, churned) is not None  # a source with rows to spare
    reread["datasets"] = [_data_card("data/w", 320, 196)]
    assert schedule_hold(reread, churned) is None
    # What the source gave counts, not what the recipe made: 315 rows balanced by answer from
    # 400 clean ones, or 320 recombined from a folder's 120 (rows of its own), are new data.
    reread["datasets"] = [_data_card("data/w", 320, 315, collected=400, recipe="balanced")]
    assert schedule_hold(reread, churned) is not None
    reread["datasets"] = [_data_card("data/w", 320, 320, collected=120, recipe="recombined")]
    assert schedule_hold(reread, churned) is not None
    # 0.20 by losing five and fixing none is a drop (5 − 1 > 1.645 × √5; exact p is 0.03).
    assert schedule_hold(state, scored(items[:5] + items[11:])) is None
    # Scores that count every answer equally weigh items unequally: one standard error judges.
    assert schedule_hold(state, scored(items[:5] + items[13:], balanced=True)) is None
    # Without the peak's misses, one standard error is the width, as before: 0.27 is a drop.
    state["evaluations"] = [state["evaluations"][0], peak]
    assert schedule_hold(state, churned) is None


def test_a_best_above_a_held_best_but_below_its_peak_says_what_it_held(tmp_path, monkeypatch):
    from postlab.agents import evaluator
    from postlab.records.steps import Directive
    from postlab.tools.evaluation.scoring import score
    from postlab.tools.tasks.catalog import load_task

    task = load_task("addition_2d")
    examples = task.validation_examples()
    n = len(examples)

    def right_up_to(count):
        completions = [e.answer if i < count else "-1" for i, e in enumerate(examples)]
        return score(task, examples, completions, "m")

    state = _held_state(tmp_path, best_iteration=3, score=0.0)
    state["plan"] = state["plan"].model_copy(update={"checkpoint": str(tmp_path / "ckpt-4")})
    # iter-2 peaked at 80 % of validation; iter-3, held within chance of it, is the best at 75 %.
    peak = right_up_to(round(0.8 * n))
    held = right_up_to(round(0.75 * n))
    records = [
        evaluation(2, peak.strict).model_copy(update={"n": n, "missed": peak.missed_prompts}),
        evaluation(3, held.strict).model_copy(update={"n": n, "missed": held.missed_prompts}),
    ]
    state["evaluations"] = [state["evaluations"][0], *records]
    state["best"] = state["best"].model_copy(
        update={
            "strict": held.strict,
            "n": n,
            "held": HeldPeak(label="iter-2", strict=peak.strict, stderr=0.04),
        }
    )
    # iter-4 beats the held best, not the peak: it is the best, and says what it stays within.
    monkeypatch.setattr(
        evaluator,
        "evaluate_checkpoint",
        lambda checkpoint, task, splits, **kwargs: {"validation": right_up_to(round(0.78 * n))},
    )
    directive = Directive(agent="evaluator", action="evaluate", reason="score")
    step = evaluator.evaluate(state, directive, _NoMemory())
    best = step.update["best"]
    assert best.label == "iter-4" and best.held.label == "iter-2"
    assert (best.held.broken, best.held.fixed) == (round(0.8 * n) - round(0.78 * n), 0)
    assert "takes the best's place: within chance of iter-2's 0.80" in step.outcome.summary


def _label_phase(tmp_path, monkeypatch):
    """A run whose iter-1 gave one answer to 80% of validation (0.35, the best) and whose iter-2
    went on with its schedule at a raised rate, scored by scripted replies: "5" to every question
    while `right["count"]` is None, else that many right and the rest wrong each its own way."""
    from postlab.agents import evaluator
    from postlab.tools.evaluation.scoring import score

    task = load_task("addition_2d")
    examples = task.validation_examples()
    checkpoints = {}

    def stretch(iteration, move="continue"):
        """The plan of `iteration`, going on with its parent's schedule; its checkpoint made."""
        checkpoints[iteration] = tmp_path / "models" / f"iter-{iteration}" / "checkpoint"
        checkpoints[iteration].mkdir(parents=True)
        return sft_plan(
            iteration=iteration,
            parent=iteration - 1,
            move=move,
            schedule_offset=40 * (iteration - 1),
            schedule_steps=240,
            checkpoint=str(checkpoints[iteration]),
        )

    stretch(1)
    plan = stretch(2, move="raise_lr")
    peak = evaluation(1, 0.35).model_copy(update={"collapse": 0.8})
    best = BestModel(
        checkpoint=str(checkpoints[1]), strict=0.35, lenient=0.35, label="iter-1", iteration=1
    )
    runs = [_trained(1, length=240), _trained(2, offset=40, length=240)]
    state = _stretch_state(tmp_path, plan, [evaluation(0, 0.0), peak], best, runs)
    asked, right = [], {"count": None}

    def replies(checkpoint, task, splits, **kwargs):
        asked.append(checkpoint)
        chosen = examples if "validation" in splits else task.test_examples()
        count = right["count"]
        completions = [
            "5" if count is None else example.answer if index < count else str(1000 + index)
            for index, example in enumerate(chosen)
        ]
        return {split: score(task, chosen, completions, "m") for split in splits}

    monkeypatch.setattr(evaluator, "evaluate_checkpoint", replies)
    return SimpleNamespace(
        state=state,
        plan=plan,
        runs=runs,
        stretch=stretch,
        checkpoints=checkpoints,
        right=right,
        asked=asked,
        n=len(examples),
    )


def test_a_collapse_going_on_with_a_collapsed_schedule_holds_and_its_peak_is_set_aside(
    tmp_path, monkeypatch
):
    from postlab.agents import evaluator
    from postlab.records.steps import Directive

    # iter-1 gave one answer to 80% of validation (0.35); iter-2 went on with its schedule at a
    # raised rate and gives one answer to every question.
    phase = _label_phase(tmp_path, monkeypatch)
    state, plan, runs, stretch = phase.state, phase.plan, phase.runs, phase.stretch
    checkpoints, asked, right = phase.checkpoints, phase.asked, phase.right
    directive = Directive(agent="evaluator", action="evaluate", reason="score")
    step = evaluator.evaluate(state, directive, _NoMemory())
    new = step.update["best"]
    # It takes the best's place (only the collapsed model can go on with the schedule); the
    # peak it set aside is kept, checkpoint and all.
    assert new.label == "iter-2" and new.strict < 0.35 and new.held.phase
    assert (new.set_aside.label, new.set_aside.strict) == ("iter-1", 0.35)
    assert "iteration 1's schedule, which gave one answer to 80% of validation; now 100%" in (
        step.outcome.summary
    )
    assert checkpoints[1].is_dir() and checkpoints[2].is_dir()
    # The run ends with the phase unbroken: the peak, not the collapsed model, is tested.
    ended = {**state, "best": new}
    finish = Directive(agent="evaluator", action="test_best", reason="report")
    tested = evaluator.evaluate(ended, finish, _NoMemory())
    restored = tested.update["best"]
    assert asked[-1] == str(checkpoints[1]) and restored.label == "iter-1"
    # The summary says which best it was restored over, for the report to name.
    assert restored.restored_over == "iter-2"
    assert build_summary({**ended, "best": restored})["best_restored_over"] == "iter-2"
    assert tested.outcome.summary.startswith(
        "iter-1 (best by validation; set aside in a label phase, and nothing since beat it on "
        "validation) on test:"
    )
    # No phase: training answers that over-represent one, a parent that did not collapse, a
    # stretch that ends the schedule, a rebalance. Each collapse is then judged as it is.
    skew = AnswerShift(answer="5", train_share=0.4, validation_share=0.1)
    shifted = {**state, "answer_shift": skew}
    whole = {**state, "evaluations": [evaluation(0, 0.0), evaluation(1, 0.35)]}
    last = {**state, "plan": plan.model_copy(update={"schedule_steps": 80})}
    rebalanced = {**state, "plan": plan.model_copy(update={"move": "rebalance"})}
    for other in (shifted, whole, last, rebalanced):
        assert "best" not in evaluator.evaluate(other, directive, _NoMemory()).update
    # iter-3 goes on from iter-2 and passes its 0.15 but not iter-1's 0.35: the best moves on
    # and iter-1 stays set aside, through a resumed run's checkpointer too.
    third = stretch(3)
    going = {
        **state,
        "plan": third,
        "best": new,
        "evaluations": [*state["evaluations"], *step.update["evaluations"]],
        "runs": [*runs, _trained(3, offset=80, length=240)],
    }
    right["count"] = round(0.25 * phase.n)
    step = evaluator.evaluate(going, directive, _NoMemory())
    after = step.update["best"]
    assert after.label == "iter-3" and after.held is None and after.set_aside.label == "iter-1"
    assert BestModel.model_validate(after.model_dump(mode="json")) == after
    assert checkpoints[1].is_dir() and not checkpoints[2].exists()
    going = {
        **going,
        "best": after,
        "evaluations": [*going["evaluations"], *step.update["evaluations"]],
    }
    on, kind = refine(going, third)
    assert kind == "hold" and (on.schedule_offset, on.optimizer_from) == (120, 3)
    assert (
        "iteration 3 passed the label phase's held best but not iter-1's 0.35, which stays set "
        "aside (validation 0.35 → 0.25): its schedule goes on"
    ) in on.reason
    # A stretch that falls back from there restarts from iter-3, which holds the best's place,
    # not from the set-aside peak the evidence names: the reason says which.
    fourth = stretch(4)
    fell = {**going, "plan": fourth, "evaluations": [*going["evaluations"], evaluation(4, 0.1)]}
    back, kind = refine(fell, fourth)
    assert kind == "lower_lr" and back.init_checkpoint == after.checkpoint
    assert (
        "(validation 0.35 → 0.10): halve the learning rate and restart from iter-3's checkpoint, "
        "the best's place since the label phase (iter-1's 0.35 stays set aside)"
    ) in back.reason
    # A later stretch past iter-1 ends the phase: nothing is set aside, iter-1's checkpoint goes.
    right["count"] = round(0.5 * phase.n)
    step = evaluator.evaluate({**going, "plan": fourth}, directive, _NoMemory())
    assert step.update["best"].label == "iter-4" and step.update["best"].set_aside is None
    assert not checkpoints[1].exists() and checkpoints[4].is_dir()


def test_the_first_stretch_past_a_collapse_is_still_the_phase_and_goes_on(tmp_path, monkeypatch):
    from postlab.agents import evaluator
    from postlab.records.steps import Directive

    # iter-2 went on with collapsed iter-1's schedule and no longer gives one answer to most
    # questions, but scores 0.10 against 0.35: beyond noise, yet the model is only beginning to
    # tell the labels apart (odd_one_out at seed 1 switched technique here and ended behind).
    phase = _label_phase(tmp_path, monkeypatch)
    phase.right["count"] = round(0.1 * phase.n)
    directive = Directive(agent="evaluator", action="evaluate", reason="score")
    step = evaluator.evaluate(phase.state, directive, _NoMemory())
    new = step.update["best"]
    assert new.label == "iter-2" and new.set_aside.label == "iter-1"
    assert "now no answer to most of it, the first stretch past the collapse" in new.held.phase
    assert phase.checkpoints[1].is_dir()
    going = {
        **phase.state,
        "best": new,
        "evaluations": [*phase.state["evaluations"], *step.update["evaluations"]],
    }
    on, kind = refine(going, phase.plan)
    assert kind == "hold" and (on.schedule_offset, on.optimizer_from) == (80, 2)
    assert "the phase's schedule goes on" in on.reason and "noise" not in on.reason
    assert _schedule_running(on, new.iteration)
    # The stretch after it has a parent that did not collapse: judged as any stretch is.
    third = phase.stretch(3)
    phase.right["count"] = round(0.05 * phase.n)
    later = {**going, "plan": third, "runs": [*phase.runs, _trained(3, offset=80, length=240)]}
    assert "best" not in evaluator.evaluate(later, directive, _NoMemory()).update
    # Nor is it the phase when the schedule ends with it, or the parent did not collapse.
    last = {**phase.state, "plan": phase.plan.model_copy(update={"schedule_steps": 80})}
    whole = {**phase.state, "evaluations": [evaluation(0, 0.0), evaluation(1, 0.35)]}
    for other in (last, whole):
        assert "best" not in evaluator.evaluate(other, directive, _NoMemory()).update


def test_a_run_ending_with_a_best_set_aside_reports_it_even_when_judged_already(tmp_path):
    from postlab.graph.supervisor import _score_best_on_test_first
    from postlab.records.outcomes import SplitScore
    from postlab.records.steps import Decision

    judged = SplitScore(split="test", strict=0.3, lenient=0.3, n=100, judge="grade.sh")
    peak = BestModel(checkpoint="c1", strict=0.35, lenient=0.35, label="iter-1", iteration=1)
    # --judge-candidates scored each new best on test as it came, the phase's held one too.
    held = BestModel(
        checkpoint="c2",
        strict=0.15,
        lenient=0.15,
        label="iter-2",
        iteration=2,
        test=judged,
        set_aside=peak.model_copy(update={"test": judged}),
    )
    stop = Decision(step=9, next="finalize", reason="budget")
    routed = _score_best_on_test_first(base_state(tmp_path, best=held), stop)
    assert routed.next == "evaluator" and routed.directive.action == "test_best"
    assert "score iter-1, the best by validation" in routed.directive.reason
    # Once the set-aside best is the best, with its score, the run finalizes.
    restored = held.set_aside
    assert _score_best_on_test_first(base_state(tmp_path, best=restored), stop) == stop
    # A --llm supervisor sees what is set aside.
    state = base_state(tmp_path, best=held, run_options=RunOptions())
    assert "Set aside: iter-1 (0.35)" in digest(state, 9, None, "train")


def _stretch_state(tmp_path, plan, evaluations, best, runs, **extra):
    """A run whose sft_full stretch `plan` has just been scored."""
    return base_state(
        tmp_path,
        findings=[finding("sft_full"), finding("sft_lora")],
        plan=plan,
        baseline=evaluations[0],
        evaluations=evaluations,
        best=best,
        runs=runs,
        tried_techniques=["sft_full"],
        **extra,
    )


def test_a_dip_within_noise_on_the_best_schedule_holds_and_the_schedule_goes_on(tmp_path):
    state = _held_state(tmp_path, best_iteration=3, score=0.78)
    state["evaluations"] = state["evaluations"][:2]  # as the evaluator sees it, before iter-4

    def scored(strict, collapse=0.0):
        return SimpleNamespace(strict=strict, n=100, collapse=collapse)

    # 0.79 on 100 items has a standard error of 0.041: 0.78 is noise, 0.70 is a drop.
    held = schedule_hold(state, scored(0.78))
    # What it held is named, for the step's summary and the report.
    assert (held.label, held.strict, held.stderr) == ("iter-3", 0.79, 0.0407)
    state["best"] = state["best"].model_copy(update={"held": held})
    assert build_summary(state)["best_held"]["label"] == "iter-3"
    state["best"] = state["best"].model_copy(update={"held": None})
    assert schedule_hold(state, scored(0.75)) is not None
    assert schedule_hold(state, scored(0.70)) is None
    assert schedule_hold(state, scored(0.78, collapse=0.9)) is None
    # Another technique, or a fresh schedule from the best, must beat the best outright.
    state["plan"] = state["plan"].model_copy(update={"schedule_offset": 0})
    assert schedule_hold(state, scored(0.78)) is None

    # Held, the iteration is the best: the lab takes the next stretch from its moments
    # instead of redoing this one at half the rate.
    state = _held_state(tmp_path, best_iteration=4, score=0.78)
    new, kind = refine(state, state["plan"])
    assert kind == "hold" and "within one standard error" in new.reason
    assert (new.schedule_offset, new.schedule_steps, new.optimizer_from) == (160, 240, 4)
    assert new.hyper.learning_rate == state["plan"].hyper.learning_rate
    assert new.data_recipe == "plain" and "on fresh data" in new.reason
    # A held stall whose misses name one skill gap aims its next stretch's data at them
    # (answer_format's "yes" to every parity question held 0.81 for four stretches).
    state = _held_state(tmp_path, best_iteration=4, score=0.78, label_collapse=19, wrong=3)
    new, kind = refine(state, state["plan"])
    # That gap is a kind of question given too few rows: the next stretch gives it more.
    assert kind == "hold" and new.data_recipe == "collapsed_kind"
    assert "86% of its misses are 'label_collapse'" in new.reason
    assert "that kind of question a larger share" in new.reason
    assert new.hyper == state["plan"].hyper
    # At the schedule's end there is nothing to go on with: a stall, as before, whose data
    # stays aimed at the gap its misses still name.
    state["plan"] = state["plan"].model_copy(update={"schedule_offset": 200})
    new, kind = refine(state, state["plan"])
    assert kind == "lower_lr" and new.data_recipe == "collapsed_kind"
    assert "label_collapse" in new.reason
    # Stalled again at the lower rate: the next technique takes the aimed rows when it can.
    state["plan"] = state["plan"].model_copy(update={"lr_halved": True})
    new, kind = refine(state, state["plan"])
    assert kind == "switch" and new.method == "sft" and new.data_recipe == "collapsed_kind"
    # Not held (the best stayed iteration 3): the usual stall, on the technique's own data.
    state = _held_state(tmp_path, best_iteration=3, score=0.70)
    new, kind = refine(state, state["plan"])
    assert kind == "lower_lr" and new.data_recipe == state["plan"].data_recipe


def _data_card(path: str, requested: int, final_size: int, **extra) -> DatasetCard:
    """A data card of `final_size` clean rows from the `requested`."""
    extra = {"seed": 0, "collected": final_size, **extra}
    return DatasetCard(name="d", task="shout", format="sft", source="train.jsonl",
                       requested=requested, duplicates_removed=0,
                       contaminated_removed=0, final_size=final_size, ngram_n=8,
                       template_ngrams_ignored=0, path=path, created_at="now",
                       columns=["prompt"], sample=[], **extra)  # fmt: skip


def _memorised_state(
    tmp_path, losses, rows_asked=320, score=0.33, rule_rows=0, number_rule_rows=0, **extra
):
    """shout at 6 × 40: two stretches on a folder's 90 rows, ending at `losses`; `rule_rows`
    of them follow a copy rule and `number_rule_rows` a number rule (the DataEngineer counts
    them on a folder's cards)."""
    stats = {"rule_rows": rule_rows}
    if number_rule_rows:
        stats |= {"number_rule_rows": number_rule_rows, "number_rules": [SUM_RULE]}
    plan = sft_plan(iteration=2, parent=1, schedule_offset=40, schedule_steps=240)
    cards, runs, iterations = [], [], []
    for iteration, loss in enumerate(losses, start=1):
        path = str(tmp_path / f"data-{iteration}")
        cards.append(_data_card(path, rows_asked, min(90, rows_asked), seed=iteration,
                                recipe_stats=stats))  # fmt: skip
        record = _trained(iteration, offset=40 * (iteration - 1), length=240)
        record.result.metrics["final_loss"] = loss
        runs.append(record)
        iterations.append(Iteration(iteration=iteration, technique="sft_full", reason="r",
                                    dataset=path, parent=iteration - 1))  # fmt: skip
    evaluations = [evaluation(0, 0.0), evaluation(1, 0.33), evaluation(2, score)]
    best = BestModel(checkpoint="ckpt-2", strict=score, lenient=0.0, label="iter-2", iteration=2)
    return _stretch_state(
        tmp_path, plan, evaluations, best, runs, iterations=iterations, datasets=cards, **extra
    )


def test_a_stretch_on_rows_learned_by_heart_is_a_stall_not_noise(tmp_path):
    # shout's stretches ended at 0.001 then 5e-4 with validation flat at 0.33: the schedule's
    # remaining 160 steps would have re-read rows the model already knew.
    state = _memorised_state(tmp_path, losses=[0.001, 0.0005])
    new, why = refine(state, state["plan"])
    assert new is None and why.endswith("stop")
    assert "its 90 training rows, every row its source holds, were learned by heart" in why
    assert "ended at training loss 0.001 and it ended at 0.0005" in why
    assert "validation 0.33 → 0.33" in why
    decision, plan = decide(state, 12, None)
    assert plan is None and decision.stop_reason == StopReason.PLATEAU
    assert "learned by heart" in decision.reason
    # With a teacher, new rows are the move: the same technique goes on, on its rows.
    state["run_options"] = RunOptions(teacher="some-model")
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.data_recipe == "synthetic"
    assert "new rows from the teacher" in new.reason and new.parent == 2
    # Not memorised, each for one reason: the hold rule carries the schedule on.
    for not_memorised in (
        _memorised_state(tmp_path, losses=[0.2, 0.0005]),  # it started from a model still learning
        _memorised_state(tmp_path, losses=[0.001, 0.02]),  # it did not end memorised
        _memorised_state(tmp_path, losses=[0.001, 0.0005], rows_asked=80),  # rows to spare
    ):
        new, kind = refine(not_memorised, not_memorised["plan"])
        assert kind == "hold", new.reason
    # A gain is a gain, however low the loss.
    state = _memorised_state(tmp_path, losses=[0.001, 0.0005], score=0.45)
    new, kind = refine(state, state["plan"])
    assert kind == "continue"


def test_a_folder_whose_answers_copy_their_prompts_gets_recombined_rows_not_a_stop(tmp_path):
    # shout: 84 of its 90 rows copy their phrase into the answer by a shared rule.
    state = _memorised_state(tmp_path, [0.001, 0.0005], rule_rows=84, task_dir=str(tmp_path))
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.data_recipe == "recombined" and new.parent == 2
    assert "84 of them copy words of their prompts into their answers" in new.reason
    assert "learned by heart" in new.reason and "GECA" in new.reason
    # The one thing left to try: the plan says it must beat the best.
    assert new.last_bet
    # A teacher's new rows come first; no rule, or no folder, leaves nothing to recombine.
    teacher = {**state, "run_options": RunOptions(teacher="some-model")}
    assert refine(teacher, teacher["plan"])[0].data_recipe == "synthetic"
    assert refine(teacher, teacher["plan"])[0].last_bet
    for nothing_to_swap in (
        _memorised_state(tmp_path, [0.001, 0.0005], rule_rows=0, task_dir=str(tmp_path)),
        _memorised_state(tmp_path, [0.001, 0.0005], rule_rows=84),
    ):
        new, why = refine(nothing_to_swap, nothing_to_swap["plan"])
        assert new is None and why.endswith("stop")
    # Without a card that found most of the folder's rows under copy rules, no router or rule
    # may choose recombined rows.
    state = _memorised_state(tmp_path, [0.001, 0.0005], rule_rows=30, task_dir=str(tmp_path))
    assert "recombined" not in usable_recipes(state, "sft_full")
    assert refine(state, state["plan"])[0] is None
    # The first stretch on recombined rows must beat the best, or the run stops: it was the
    # one thing left to try. Later stretches on them are judged like any other.
    for score, parent_recipe, expected in (
        (0.33, "plain", None),
        (0.45, "plain", "continue"),
        (0.33, "recombined", "lower_lr"),
    ):
        state = _recombined_stretch(tmp_path, score, parent_recipe)
        assert state["plan"].last_bet == (parent_recipe == "plain")
        new, kind = refine(state, state["plan"])
        # A last bet's successor is never one itself: the stretch it follows was on new rows.
        assert new is None or not new.last_bet
        if expected is None:
            assert new is None and kind.endswith("stop")
            assert "the first on recombined rows after its folder's own" in kind
        else:
            assert kind == expected and new.data_recipe == "recombined"
    # A stall on recombined rows restarts at half the rate on new recombined rows, not on the
    # plain rows it learned by heart.
    state = _held_state(tmp_path, best_iteration=3, score=0.70)
    state["task_dir"] = str(tmp_path)
    state["plan"] = state["plan"].model_copy(update={"data_recipe": "recombined"})
    new, kind = refine(state, state["plan"])
    assert kind == "lower_lr" and new.data_recipe == "recombined"
    # After a gain, the next stretch's rows are recombined afresh, and its reason says so.
    state["evaluations"][-1] = evaluation(4, 0.85)
    new, kind = refine(state, state["plan"])
    assert kind == "continue" and new.data_recipe == "recombined"
    assert "fresh rows of the same recipe, recombined" in new.reason


SUM_RULE = "number 1 + number 2 (90 rows worded 'gets has more')"


def test_a_folder_too_small_for_its_stretches_trains_on_rows_its_number_rules_compute(tmp_path):
    # word_problems: a stretch asks for 320 rows, the folder holds 90, and a number rule
    # computes every answer; losses far from learned by heart.
    folder = {"task_dir": str(tmp_path)}
    state = _memorised_state(tmp_path, [0.5, 0.3], score=0.45, number_rule_rows=90, **folder)
    new, kind = refine(state, state["plan"])
    assert kind in ("continue", "raise_lr") and new.data_recipe == "recombined"
    assert "its folder holds 90 rows, fewer than the 320 the stretch asked for" in new.reason
    assert SUM_RULE in new.reason and "validation 0.33 → 0.45" in new.reason
    # A held dip goes on the same way: new rows, not the folder's repeated again.
    state = _memorised_state(tmp_path, [0.5, 0.3], score=0.33, number_rule_rows=90, **folder)
    new, kind = refine(state, state["plan"])
    assert kind == "hold" and new.data_recipe == "recombined" and SUM_RULE in new.reason
    # So does a stall (not held: the best stayed iteration 1), at half the rate, and says why.
    state["best"] = state["best"].model_copy(update={"iteration": 1, "label": "iter-1"})
    new, kind = refine(state, state["plan"])
    assert kind == "lower_lr" and new.data_recipe == "recombined" and SUM_RULE in new.reason
    # No number rule over most rows, rows to spare, or no folder: plain rows as before.
    for plain in (
        _memorised_state(tmp_path, [0.5, 0.3], score=0.45, number_rule_rows=30, **folder),
        _memorised_state(
            tmp_path, [0.5, 0.3], score=0.45, number_rule_rows=90, rows_asked=80, **folder
        ),  # fmt: skip
        _memorised_state(tmp_path, [0.5, 0.3], score=0.45, number_rule_rows=90),
        # Copy rules over the folder as well: they wait for rows learned by heart.
        _memorised_state(
            tmp_path, [0.5, 0.3], score=0.45, number_rule_rows=90, rule_rows=90, **folder
        ),  # fmt: skip
    ):
        new, _ = refine(plain, plain["plan"])
        assert new.data_recipe == "plain" and "number rules" not in new.reason
    # With the folder surveyed as a run is prepared, the whole schedule is the measure: 400
    # rows fill a stretch of 80 but not a schedule of 1,920.
    survey = FolderSurvey(
        rows=400, surveyed_rows=400, number_rule_rows=400, number_rules=[SUM_RULE]
    )
    state = _memorised_state(
        tmp_path, [0.5, 0.3], score=0.45, number_rule_rows=90, rows_asked=80,
        folder_survey=survey, **folder,
    )  # fmt: skip
    new, _ = refine(state, state["plan"])
    assert new.data_recipe == "recombined"
    assert "its folder holds 400 rows, fewer than the 1920 its schedule reads" in new.reason
    # Once on such rows, a continuation keeps them (fresh ones), and a dip on the first of them
    # is no last bet (its parent had not learned its rows by heart): the hold rule judges it.
    state = _recombined_stretch(tmp_path, 0.45, "plain", losses=[0.5, 0.3], number_rule_rows=90)
    new, kind = refine(state, state["plan"])
    assert new.data_recipe == "recombined" and "fresh rows those rules compute" in new.reason
    state = _recombined_stretch(tmp_path, 0.33, "plain", losses=[0.5, 0.3], number_rule_rows=90)
    state["best"] = state["best"].model_copy(update={"iteration": 3, "label": "iter-3"})
    new, kind = refine(state, state["plan"])
    assert kind == "hold" and new.data_recipe == "recombined"


def _recombined_stretch(tmp_path, score, parent_recipe, losses=(0.001, 0.0005), **counts):
    """shout's third stretch, on recombined rows, scored `score` after two memorised ones (the
    second on `parent_recipe` rows; `losses` and `counts` as `_memorised_state` takes them)."""
    counts = counts or {"rule_rows": 84}
    state = _memorised_state(tmp_path, list(losses), task_dir=str(tmp_path), **counts)
    cards = state["datasets"]
    cards[1] = cards[1].model_copy(update={"recipe": parent_recipe})
    path = str(tmp_path / "data-3")
    # A recombined card counts the folder's own rows it started from.
    stats = {**cards[1].recipe_stats, "seed_rows": 90}
    cards.append(cards[1].model_copy(update={"recipe": "recombined", "final_size": 320,
                                             "path": path, "recipe_stats": stats}))  # fmt: skip
    record = _trained(3, offset=80, length=240)
    record.result.metrics["final_loss"] = 0.3
    state["runs"].append(record)
    state["iterations"].append(Iteration(iteration=3, technique="sft_full", reason="r",
                                         dataset=path, parent=2))  # fmt: skip
    state["evaluations"].append(evaluation(3, score))
    if score > 0.33:
        state["best"] = BestModel(checkpoint="ckpt-3", strict=score, lenient=0.0, label="iter-3",
                                  iteration=3)  # fmt: skip
    state["plan"] = sft_plan(iteration=3, parent=2, schedule_offset=80, schedule_steps=240,
                             data_recipe="recombined",
                             last_bet=last_bet(state, "recombined", 2))  # fmt: skip
    return state


def test_a_loop_guard_switch_never_trains_past_the_iteration_budget(tmp_path):
    state = _held_state(tmp_path, best_iteration=3, score=0.70)
    plateau = GuardEvent(
        pattern="plateau", key="plateau:1", detail="no gain", rung="switch_technique", step=9
    )
    decision, switched = decide(state, 9, plateau)
    assert switched.technique == "sft_lora" and decision.guard_event == "plateau:1"
    # The same firing after the last iteration the run may train ends the run: on answer_format
    # it once switched technique after the sixth of six iterations and trained a seventh.
    state["run_options"] = RunOptions(max_iterations=4)
    decision, switched = decide(state, 9, plateau)
    assert switched is None and decision.stop_reason == StopReason.BUDGET_ITERATIONS


def test_the_best_schedule_runs_from_its_evaluation_through_the_next_stretch():
    done = sft_plan(iteration=4, parent=3, schedule_offset=120, schedule_steps=240)
    assert _schedule_running(done, best_iteration=4)
    assert not _schedule_running(done, best_iteration=3)
    assert not _schedule_running(done.model_copy(update={"schedule_offset": 200}), 4)
    # Its next stretch, before it is trained: the schedule still runs (the guard's plateau
    # fired here once, between a hold and the stretch it planned).
    following = sft_plan(
        iteration=5, status="needs_data", parent=4, schedule_offset=160, schedule_steps=240
    )
    assert _schedule_running(following, best_iteration=4)
    assert not _schedule_running(following.model_copy(update={"schedule_offset": 0}), 4)
