"""No agent outcome crashes the supervisor: random sequences of results, failures and raised
errors from every tool the agents call still end each run in `finalize` within its budget."""

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_llm_policy import state_for

from postlab.agents import data_engineer, evaluator, trainer
from postlab.graph.playbook import decide
from postlab.graph.router_moves import RoutingChoice, validate
from postlab.graph.runner import run_lab
from postlab.records.artifacts import DatasetCard, FailureInfo, TrainingResult
from postlab.records.outcomes import BestModel
from postlab.records.run import StopReason
from postlab.tools.data.training_sets import DatasetError
from postlab.tools.evaluation.scoring import EvalResult, EvaluationError
from postlab.tools.training.recipes import rate_range

EVAL = st.one_of(
    st.tuples(
        st.just("score"),
        st.floats(0, 1),
        st.sampled_from([0.0, 1.0]),
        st.sampled_from(["wrong", "off_by_power_of_ten", "empty", "format"]),
    ),
    st.tuples(st.sampled_from(["eval_error", "raise"])),
)
TRAIN = st.one_of(
    st.just(("ok",)),
    st.tuples(st.just("failed"), st.sampled_from(["oom", "nan", "timeout", "bad_config", "crash"])),
    st.just(("raise",)),
)
DATA = st.sampled_from([("ok",), ("bad_data",), ("raise",)])


class Script:
    """What each faked tool answers next, in order; plain success once a script runs out."""

    def __init__(self, evals, trains, datas):
        self.evals, self.trains, self.datas = list(evals), list(trains), list(datas)

    def evaluate(self, checkpoint, task, splits=("validation",), limit=None, **_):
        kind, *rest = self.evals.pop(0) if self.evals else ("score", 0.5, 0.0, "wrong")
        if kind == "eval_error":
            raise EvaluationError("generation failed")
        if kind == "raise":
            raise RuntimeError("evaluator tool blew up")
        strict, collapse, category = rest
        n = 10
        right = round(strict * n)
        return {
            split: EvalResult(
                model_path=str(checkpoint),
                task=task.name,
                n=n,
                strict=right / n,
                lenient=right / n,
                error_categories={"correct": right, category: n - right},
                missed_prompts=[f"q{i}" for i in range(n - right)],
                collapse=collapse,
            )
            for split in splits
        }

    def train(self, spec, on_progress=None):
        kind, *rest = self.trains.pop(0) if self.trains else ("ok",)
        if kind == "raise":
            raise RuntimeError("trainer tool blew up")
        if kind == "failed":
            failure = FailureInfo(kind=rest[0], message="boom", normalized="boom")
            return TrainingResult(status="failed", failure=failure)
        checkpoint = Path(spec.output_dir) / "checkpoint"
        return TrainingResult(status="ok", checkpoint=str(checkpoint), metrics={"final_loss": 1})

    def build(self, task, fmt, size, seed, out_dir, **_):
        kind = (self.datas.pop(0) if self.datas else ("ok",))[0]
        if kind == "bad_data":
            raise DatasetError("only 0 training examples survived cleaning")
        if kind == "raise":
            raise RuntimeError("data tool blew up")
        return DatasetCard(
            name="d", task=task.name, format=fmt, source="generator", seed=seed,
            requested=size, collected=size, duplicates_removed=0, contaminated_removed=0,
            final_size=size, ngram_n=8, template_ngrams_ignored=0, path=str(out_dir),
            created_at="now", columns=["prompt"], sample=[],
        )  # fmt: skip


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    evals=st.lists(EVAL, max_size=12),
    trains=st.lists(TRAIN, max_size=8),
    datas=st.lists(DATA, max_size=8),
    budget=st.integers(4, 30),
)
@example(evals=[("raise",)] * 3, trains=[], datas=[], budget=12)
@example(evals=[], trains=[("raise",)] * 4, datas=[("bad_data",)] * 2, budget=30)
@example(evals=[("score", 0.3, 1.0, "wrong")] * 6, trains=[], datas=[], budget=30)
# Failed data steps spend the budget after a best exists: its test score still fits within it.
@example(
    evals=[("score", 0.0, 0.0, "wrong"), ("score", 0.45, 0.0, "wrong")],
    trains=[],
    datas=[("bad_data",), ("raise",), ("ok",), ("bad_data",), ("raise",), ("bad_data",)],
    budget=13,
)
def test_every_sequence_of_outcomes_ends_in_finalize_within_budget(
    tiny_model, evals, trains, datas, budget
):
    script = Script(evals, trains, datas)
    # One folder per example (hypothesis reuses function fixtures), removed when it ends.
    with tempfile.TemporaryDirectory(prefix="postlab-prop-") as folder:
        _run_on_script(tiny_model, script, budget, Path(folder))
    # The faked tools were reached: the agents really ran on these outcomes.
    assert len(script.evals) < len(evals) or not evals


def _run_on_script(tiny_model, script, budget: int, run_dir: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluator, "evaluate_checkpoint", script.evaluate)
        patch.setattr(trainer, "run_training", script.train)
        patch.setattr(data_engineer, "build_training_set", script.build)
        output = run_lab(
            {
                "task": "addition_2d",
                "model": str(tiny_model),
                "budget": budget,
                "run_dir": str(run_dir),
                "options": {"max_iterations": 4, "train_steps": 2, "train_size": 16},
            }
        )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert output["stop_reason"] in set(StopReason), summary["stop_detail"]
    assert summary["steps_used"] <= budget
    assert (run_dir / "report.md").is_file()


ARG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
CHOICES = st.builds(
    RoutingChoice,
    next=st.sampled_from(["librarian", "data_engineer", "trainer", "evaluator", "finalize"]),
    action=st.one_of(st.sampled_from(["sft_full", "sft_lora", "grpo", "dpo", "", "x"]), st.text()),
    args=st.dictionaries(
        st.sampled_from(
            [
                "learning_rate",
                "max_steps",
                "batch_size",
                "lora_r",
                "data_recipe",
                "technique",
                "query",
            ]
        ),
        ARG_VALUES,
        max_size=5,
    ),  # fmt: skip
    reason=st.text(max_size=30),
)


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory):
    """A model folder the router's checks read (its size decides full or LoRA), made once."""
    return tmp_path_factory.mktemp("router")


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(choice=CHOICES, trained=st.booleans(), status=st.sampled_from(["done", "needs_data"]))
def test_any_routing_answer_is_either_a_checked_decision_or_a_problem(
    router_dir, choice, trained, status
):
    """Whatever the routing model answers, validation decides or explains; it never raises."""
    state = state_for(router_dir)
    if trained:
        best = BestModel(checkpoint="c", strict=0.4, lenient=0.4, label="iter-1", iteration=1)
        state = state_for(router_dir, best=best)
    expected, plan = decide(state, 3, None)
    if status == "needs_data" and plan is not None:
        state["plan"] = plan
        expected, plan = decide(state, 4, None)
    decision, new_plan, problem = validate(choice, state, 3, None, expected, plan)
    assert (decision is None) != (problem is None)
    if decision is not None and new_plan is not None:
        planned = plan.hyper.learning_rate if plan is not None else None
        low, high = rate_range(new_plan.hyper.adapter, planned)
        assert low <= new_plan.hyper.learning_rate <= high
