"""LLM-driven agent steps: scripted chat models call tools, fail, retry, and fall back."""

import time

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from support.scripted_model import ScriptedChatModel

from postlab.agents import data_engineer, evaluator, librarian
from postlab.agents.base import StepResult
from postlab.agents.llm.answers import DataAnswer, EvaluatorAnswer, LibrarianAnswer
from postlab.agents.llm.driver import make_llm_body
from postlab.agents.llm.models import LLMConfigError, LLMSpec, check_llm
from postlab.memory.store import open_memory
from postlab.records.hyper import Hyper
from postlab.records.outcomes import AgentOutcome
from postlab.records.run import RunOptions
from postlab.records.steps import Directive, Plan, TrajectoryRecord

OPTIONS = RunOptions(train_steps=1, train_size=16, eval_limit=4, batch_size=4, max_iterations=1)


def call(name, args=None, n=[0]):  # noqa: B006 - a shared counter gives unique call ids
    n[0] += 1
    return AIMessage("", tool_calls=[{"name": name, "args": args or {}, "id": f"call-{n[0]}"}])


def data_state(tmp_path, **extra):
    plan = Plan(
        iteration=1,
        technique="sft_full",
        method="sft",
        init_checkpoint="unused",
        hyper=Hyper(learning_rate=1e-4, max_steps=1, batch_size=4),
        data_format="sft",
        data_size=16,
        data_seed=1,
        reason="r",
    )
    state = {
        "run_dir": str(tmp_path),
        "goal": "teach two-digit addition",
        "task": "addition_2d",
        "run_options": OPTIONS,
        "trajectory": [],
        "plan": plan,
    }
    return {**state, **extra}


DATA = Directive(
    agent="data_engineer",
    action="build_dataset",
    args={"format": "sft", "size": 16, "seed": 1},
    reason="iteration 1 needs data",
)


def data_body(model, **kwargs):
    return make_llm_body(
        "data_engineer",
        data_engineer.build_dataset,
        lambda: model,
        data_engineer.SYSTEM_PROMPT,
        DataAnswer,
        retry_delay_s=0.01,
        **kwargs,
    )


def test_scripted_model_drives_a_step_with_its_arguments(tmp_path):
    model = ScriptedChatModel(
        script=[
            call("build_dataset", {"size": 24, "seed": 7}),
            call("DataAnswer", {"summary": "ok"}),
        ]
    )
    result = data_body(model)(data_state(tmp_path), DATA, open_memory(tmp_path))
    assert result.outcome.status == "ok"
    card = result.update["datasets"][0]
    assert (card.seed, card.requested) == (7, 24)
    assert result.update["fallbacks"] == []
    usage = result.update["llm_usage"][0]
    assert usage.agent == "data_engineer" and usage.calls == 2 and usage.input_tokens > 0
    assert usage.cost_usd == 0.0 and usage.model == "scripted"
    prompt = model.received[0]
    assert "untrusted-data" in prompt[0].content and "build_dataset(format=sft" in prompt[1].content
    assert "build_dataset" in model.bound[0] and "DataAnswer" in model.bound[0]


def test_malformed_arguments_and_unknown_tools_go_back_and_the_retry_succeeds(tmp_path):
    model = ScriptedChatModel(
        script=[
            call("build_dataset", {"size": "lots"}),
            call("rm_rf", {}),
            call("build_dataset", {"size": 16}),
            call("DataAnswer", {"summary": 3}),
            call("DataAnswer", {"summary": "built"}),
        ]
    )
    result = data_body(model, max_model_retries=3)(
        data_state(tmp_path), DATA, open_memory(tmp_path)
    )
    assert result.outcome.status == "ok" and result.update["fallbacks"] == []
    errors = [m for m in model.received[-1] if isinstance(m, ToolMessage) and "rror" in m.content]
    assert len(errors) == 3
    assert "valid integer" in errors[0].content and "not a valid tool" in errors[1].content


def test_garbage_answers_fall_back_to_the_playbook(tmp_path):
    model = ScriptedChatModel(script=["I am a teapot. {]]"])
    result = data_body(model)(data_state(tmp_path), DATA, open_memory(tmp_path))
    assert result.outcome.status == "ok" and result.update["datasets"]
    (fallback,) = result.update["fallbacks"]
    assert fallback.agent == "data_engineer" and fallback.step == 1
    assert fallback.reason.startswith("playbook: ") and "build_dataset" in fallback.reason
    # The error went back to the model twice, then the playbook took the decision.
    assert result.update["llm_usage"][0].calls == 3
    assert sum(isinstance(m, HumanMessage) for m in model.received[-1]) == 3


def test_repeated_calls_and_empty_answers_count_as_errors(tmp_path):
    model = ScriptedChatModel(script=[call("list_tasks"), call("list_tasks"), AIMessage("")])
    result = data_body(model)(data_state(tmp_path), DATA, open_memory(tmp_path))
    assert result.update["fallbacks"][0].reason.startswith("playbook")
    told = [m.content for m in model.received[-1] if isinstance(m, HumanMessage)]
    assert any("repeated" in text for text in told)


def test_the_action_runs_once_even_when_called_twice(tmp_path):
    runs = []

    def playbook(state, directive, memory):
        runs.append(state["plan"].arguments("build_dataset"))
        return StepResult(AgentOutcome(summary="built"), {})

    model = ScriptedChatModel(
        script=[call("build_dataset", {"seed": 2}), call("build_dataset", {"seed": 3}), "done"]
    )
    body = make_llm_body(
        "data_engineer", playbook, lambda: model, "p", DataAnswer, retry_delay_s=0.01
    )
    result = body(data_state(tmp_path), DATA, open_memory(tmp_path))
    # The action ran once with the model's seed; the missing report is recorded, not re-run.
    assert [args["seed"] for args in runs] == [2]
    assert result.update["fallbacks"][0].reason.startswith("report: ")
    second = [m for m in model.received[-1] if isinstance(m, ToolMessage)][1]
    assert second.content.startswith("already done")


def test_bounds_depend_on_the_run_and_a_raising_playbook_still_raises(tmp_path):
    def playbook(state, directive, memory):
        raise RuntimeError("disk full")

    model = ScriptedChatModel(
        script=[call("build_dataset", {"size": 10_000}), call("build_dataset", {"size": 16})]
    )
    body = make_llm_body("data_engineer", playbook, lambda: model, "p", DataAnswer)
    with pytest.raises(RuntimeError, match="disk full"):
        body(data_state(tmp_path), DATA, open_memory(tmp_path))
    assert "above this run's limit of 64" in model.received[1][-1].content


def test_provider_errors_are_retried_and_slow_calls_time_out(tmp_path):
    replies = iter(
        [RuntimeError("503"), call("build_dataset"), call("DataAnswer", {"summary": "s"})]
    )

    def flaky(messages):
        reply = next(replies)
        if isinstance(reply, Exception):
            raise reply
        return reply

    result = data_body(ScriptedChatModel(script=flaky))(
        data_state(tmp_path), DATA, open_memory(tmp_path)
    )
    assert result.update["fallbacks"] == []

    def slow(messages):
        time.sleep(2)
        return "late"

    body = data_body(ScriptedChatModel(script=slow), call_timeout_s=0.2, provider_retries=0)
    result = body(data_state(tmp_path), DATA, open_memory(tmp_path))
    assert "TimeoutError" in result.update["fallbacks"][0].reason


def test_librarian_and_evaluator_steps_with_outside_text_marked(tmp_path, tiny_model):
    def librarian_script(messages):
        names = [m.name for m in messages if isinstance(m, ToolMessage)]
        if "read_paper" not in names:
            return call("read_paper", {"paper_id": "2106.09685"})
        if "research" not in names:
            return call("research", {"query": "arithmetic"})
        return call("LibrarianAnswer", {"summary": "found", "top_technique": "sft_full"})

    state = data_state(tmp_path, base_model_path=str(tiny_model), plan=None)
    model = ScriptedChatModel(script=librarian_script)
    body = make_llm_body(
        "librarian", librarian.research, lambda: model, librarian.SYSTEM_PROMPT, LibrarianAnswer
    )
    directive = Directive(agent="librarian", action="research", reason="find techniques")
    result = body(state, directive, open_memory(tmp_path))
    assert result.update["findings"] and result.update["fallbacks"] == []
    paper = next(m for m in model.received[-1] if isinstance(m, ToolMessage))
    assert paper.content.startswith('<untrusted-data source="paper:2106.09685">')

    model = ScriptedChatModel(script=[call("evaluate"), call("EvaluatorAnswer", {"summary": "s"})])
    body = make_llm_body(
        "evaluator", evaluator.evaluate, lambda: model, evaluator.SYSTEM_PROMPT, EvaluatorAnswer
    )
    directive = Directive(
        agent="evaluator", action="baseline", args={"checkpoint": str(tiny_model)}, reason="base"
    )
    result = body(state, directive, open_memory(tmp_path))
    assert result.update["baseline"].n == 4 and result.outcome.score is not None


def test_a_fact_from_step_5_reaches_the_model_at_step_300(tmp_path):
    memory = open_memory(tmp_path)
    fact = (
        "Step 5 finding: this tokenizer splits numbers into single digits, so answers longer "
        "than 8 tokens get truncated; keep max_completion_length at 16 or more."
    )
    memory.add("observations", fact, {"step": 5})
    noise = [
        f"Iteration {i}: trained sft_full (full, lr {1e-4 * (1 + i % 7):g}, {i % 9 + 1} steps, "
        f"batch 4): final loss {2.0 / (1 + i):.3f} in {10 + i}s"
        for i in range(150)
    ] + [
        f"iter-{i} missed (wrong_answer): '{i}+{i % 13}' → '{i}', expected {i}" for i in range(150)
    ]
    memory.add_many("experiments", noise[:150])
    memory.add_many("observations", noise[150:])
    trajectory = [
        TrajectoryRecord(
            step=s,
            agent="trainer" if s % 4 == 0 else "evaluator",
            action="train" if s % 4 == 0 else "evaluate",
            signature=f"sig-{s}",
            status="ok",
            summary=f"step {s} done",
            started_at=0.0,
            wall_s=1.0,
        )
        for s in range(1, 300)
    ]
    model = ScriptedChatModel(script=[call("train"), call("TrainerAnswer", {"summary": "s"})])

    def playbook(state, directive, memory):
        return StepResult(AgentOutcome(summary="trained"), {})

    from postlab.agents.llm.answers import TrainerAnswer

    body = make_llm_body("trainer", playbook, lambda: model, "p", TrainerAnswer)
    directive = Directive(
        agent="trainer",
        action="train",
        reason="iteration 40: GRPO; answers get truncated, how many tokens do digits need?",
    )
    grpo = Hyper(learning_rate=1e-5, max_steps=8, batch_size=4, num_generations=4)
    plan = data_state(tmp_path)["plan"].model_copy(
        update={"technique": "grpo", "method": "grpo", "hyper": grpo}
    )
    state = data_state(tmp_path, trajectory=trajectory, plan=plan)
    result = body(state, directive, memory)
    assert memory.count() >= 301 and result.update["fallbacks"] == []
    prompt = model.received[0][1].content
    assert fact in prompt
    assert "step 296 train ok" in prompt and "step 100 train" not in prompt


def test_model_strings_are_checked_before_a_run(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACEHUB_API_TOKEN", raising=False)
    with pytest.raises(LLMConfigError, match="HF_TOKEN"):
        check_llm("hf:HuggingFaceTB/SmolLM2-1.7B-Instruct")
    with pytest.raises(LLMConfigError, match="langchain-openai"):
        check_llm("openai:gpt-4o-mini")
    with pytest.raises(LLMConfigError, match="provider:model"):
        LLMSpec.parse("nonsense")
    assert str(LLMSpec.parse("claude-sonnet-4")) == "anthropic:claude-sonnet-4"


@pytest.mark.slow
def test_local_smollm2_answers_offline():
    from postlab.agents.llm.models import load_chat_model

    model = load_chat_model("local:smollm2")
    reply = model.invoke([HumanMessage("Say hello.")])
    assert isinstance(reply, AIMessage) and reply.content.strip()


def test_usage_totals_per_agent():
    from postlab.records.usage import LLMUsage, usage_by_agent

    totals = usage_by_agent(
        [
            LLMUsage(agent="trainer", calls=2, input_tokens=10, output_tokens=3, cost_usd=0.5),
            LLMUsage(agent="trainer", calls=1, input_tokens=5, output_tokens=1, cost_usd=0.25),
            LLMUsage(agent="supervisor", calls=1, input_tokens=7, output_tokens=2),
        ]
    )
    assert totals["trainer"]["calls"] == 3 and totals["trainer"]["cost_usd"] == 0.75
    assert totals["supervisor"]["cost_usd"] is None and totals["supervisor"]["input_tokens"] == 7
