"""No agent outcome crashes the supervisor: random sequences of results, failures and raised
errors from every tool the agents call still end each run in `finalize` within its budget."""

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from postlab.agents import data_engineer, evaluator, trainer
from postlab.graph.runner import run_lab
from postlab.records.artifacts import DatasetCard, FailureInfo, TrainingResult
from postlab.records.run import StopReason
from postlab.tools.data.training_sets import DatasetError
from postlab.tools.evaluation.scoring import EvalResult, EvaluationError

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
    max_examples=8,
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
def test_every_sequence_of_outcomes_ends_in_finalize_within_budget(
    tiny_model, evals, trains, datas, budget
):
    script = Script(evals, trains, datas)
    run_dir = Path(tempfile.mkdtemp(prefix="postlab-prop-"))
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
    # The faked tools were reached: the agents really ran on these outcomes.
    assert len(script.evals) < len(evals) or not evals
    assert output["stop_reason"] in set(StopReason), summary["stop_detail"]
    assert summary["steps_used"] <= budget
    assert (run_dir / "report.md").is_file()
