"""The LLM routing policy: valid choices steer the run, invalid ones fall back, runs finalize."""

import json
import re

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from support.scripted_model import ScriptedChatModel
from support.task_folders import sums_folder

from postlab.agents.llm import answers as answers_module
from postlab.agents.llm.bodies import build_llm_bodies
from postlab.agents.llm.driver import make_llm_body
from postlab.agents.llm.tools import ACTION_TOOL
from postlab.agents.roster import PLAYBOOKS, SYSTEM_PROMPTS
from postlab.graph.builder import build_graph, recursion_limit
from postlab.graph.llm_router import build_llm_router, make_llm_router
from postlab.graph.playbook import decide
from postlab.graph.router_moves import RoutingChoice, allowed_moves, validate
from postlab.memory.checkpoints import state_serializer
from postlab.records.outcomes import BestModel, EvaluationRecord, PaperRef, TechniqueFinding
from postlab.records.run import RunOptions, StopReason
from postlab.tools.data.recombination import survey_folder
from postlab.tools.data.training_sets import usable_examples
from postlab.tools.tasks.catalog import load_task

OPTIONS = {
    "train_steps": 1,
    "train_size": 16,
    "eval_limit": 4,
    "batch_size": 4,
    "max_iterations": 1,
}
BUDGET = 20


def call(name, args, tag):
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"{name}-{tag}"}])


def choice(next_, reason="because", action="", args=None):
    return RoutingChoice(next=next_, action=action, args=args or {}, reason=reason)


def finding(key, method="sft"):
    return TechniqueFinding(
        key=key,
        name=key,
        method=method,
        runnable=True,
        relevance=1.0,
        rationale="r",
        papers=[PaperRef(id="2106.09685", title="LoRA", year=2021)],
    )


def state_for(tmp_path, **extra):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model.safetensors").write_bytes(b"0" * 1024)
    baseline = EvaluationRecord(
        label="baseline", iteration=0, checkpoint=str(model), strict=0.05, lenient=0.1, n=4
    )
    state = {
        "run_dir": str(tmp_path),
        "goal": "g",
        "task": "addition_2d",
        "base_model_path": str(model),
        "run_options": RunOptions(**OPTIONS),
        "budget": BUDGET,
        "trajectory": [],
        "evaluations": [baseline],
        "baseline": baseline,
        "best": None,
        "runs": [],
        "tried_techniques": [],
        "findings": [finding("sft_full"), finding("sft_lora"), finding("grpo", "grpo")],
    }
    return {**state, **extra}


def test_choices_are_checked_against_what_the_playbook_allows(tmp_path):
    state = state_for(tmp_path, baseline=None, findings=[])
    expected, plan = decide(state, 0, None)
    assert validate(choice("trainer"), state, 0, None, expected, plan)[2].startswith("evaluator")
    assert "not allowed" in validate(choice("finalize"), state, 0, None, expected, plan)[2]
    decision, _, problem = validate(choice("evaluator", "measure"), state, 0, None, expected, plan)
    assert problem is None and decision.directive.action == "baseline"
    assert decision.reason == "measure"

    state = state_for(tmp_path)
    expected, plan = decide(state, 2, None)
    lora = choice("data_engineer", "lora fits", "sft_lora", {"learning_rate": 1.0, "lora_r": 8})
    decision, new, problem = validate(lora, state, 2, None, expected, plan)
    assert problem is None and new.technique == "sft_lora" and new.iteration == 1
    # The learning rate is clamped into the technique's range; LoRA alpha follows the rank.
    assert new.hyper.learning_rate == 1e-3 and new.hyper.lora_alpha == 16
    assert decision.next == "data_engineer" and new.data_size == 16
    # Sizes are clamped to the run's own limits and the rank to the range Hyper accepts.
    big = {"lora_r": 512, "max_steps": 10_000, "batch_size": 1000}
    _, large, problem = validate(
        choice("data_engineer", "x", "sft_lora", big), state, 2, None, expected, plan
    )
    options = state["run_options"]
    assert problem is None and large.hyper.lora_r == 64
    assert large.hyper.max_steps == 2 * options.train_steps
    assert large.hyper.batch_size == 4 * options.batch_size
    grpo = choice("data_engineer", action="grpo")
    assert "not available" in validate(grpo, state, 2, None, expected, plan)[2]
    decision, _, problem = validate(
        choice("librarian", args={"query": "rl"}), state, 2, None, expected, plan
    )
    assert problem is None and decision.directive.args["query"] == "rl"

    state["plan"] = new.model_copy(update={"status": "needs_training", "dataset_path": "d"})
    expected, plan = decide(state, 3, None)
    assert "in progress" in validate(choice("librarian"), state, 3, None, expected, plan)[2]
    assert validate(choice("evaluator"), state, 3, None, expected, plan)[2].startswith("trainer")


def test_the_model_chooses_the_data_recipe_and_may_stop_between_iterations(tmp_path):
    state = state_for(tmp_path)
    expected, plan = decide(state, 3, None)
    curriculum = choice("data_engineer", "order", "sft_full", {"data_recipe": "curriculum"})
    decision, new, problem = validate(curriculum, state, 3, None, expected, plan)
    assert problem is None and new.data_recipe == "curriculum" and new.data_format == "sft"
    wrong = choice("data_engineer", "pairs", "sft_full", {"data_recipe": "preference"})
    assert "does not fit sft_full" in validate(wrong, state, 3, None, expected, plan)[2]
    # Synthetic rows need a teacher model, which this run was not given.
    synthetic = choice("data_engineer", "write", "sft_full", {"data_recipe": "synthetic"})
    assert "does not fit sft_full" in validate(synthetic, state, 3, None, expected, plan)[2]
    # Before anything is trained, stopping is refused; after, it is the model's call.
    assert "not allowed yet" in validate(choice("finalize"), state, 3, None, expected, plan)[2]
    trained = BestModel(checkpoint="c", strict=0.4, lenient=0.4, label="iter-1", iteration=1)
    state = state_for(tmp_path, best=trained)
    expected, plan = decide(state, 6, None)
    decision, _, problem = validate(
        choice("finalize", "gains are flat"), state, 6, None, expected, plan
    )
    assert problem is None and decision.next == "finalize"
    assert decision.stop_reason == StopReason.CHOSEN and "gains are flat" in decision.reason


def test_the_model_may_open_on_the_rows_a_short_folders_rules_compute(tmp_path):
    # 12 sums for a stretch that builds 16 rows: the playbook opens on rows the rule computes.
    folder = sums_folder(tmp_path / "sums", 12)
    survey = survey_folder(usable_examples(load_task(None, folder)), OPTIONS["train_size"])
    state = state_for(tmp_path, task_dir=str(folder), folder_survey=survey)
    expected, plan = decide(state, 3, None)
    assert plan.data_recipe == "recombined"
    moves = allowed_moves(state, None, expected, plan)
    assert "picks sft_full on recombined rows" in moves and "recombined)" in moves
    # Silent on data, the model keeps the playbook's recipe; it may name it, or another.
    for args in ({}, {"data_recipe": "recombined"}):
        _, new, problem = validate(
            choice("data_engineer", "sums", "sft_full", args), state, 3, None, expected, plan
        )
        assert problem is None and new.data_recipe == "recombined"
    curriculum = choice("data_engineer", "order", "sft_full", {"data_recipe": "curriculum"})
    assert validate(curriculum, state, 3, None, expected, plan)[1].data_recipe == "curriculum"
    # Another technique starts from its own recipe, not the playbook's.
    _, lora, problem = validate(
        choice("data_engineer", "cheap", "sft_lora"), state, 3, None, expected, plan
    )
    assert problem is None and lora.data_recipe == "plain"


def expert(invalid_at=(), once_invalid_at=()):
    """One scripted model for supervisor and agents; bad answers at the given steps."""
    attempts: dict[int, int] = {}

    def script(messages):
        system = next(str(m.content) for m in messages if isinstance(m, SystemMessage))
        prompt = next(str(m.content) for m in messages if isinstance(m, HumanMessage))
        if system.startswith("You are the supervisor"):
            step = int(re.search(r"Step (\d+) of", prompt).group(1))
            attempts[step] = attempts.get(step, 0) + 1
            if step in invalid_at or (step in once_invalid_at and attempts[step] == 1):
                return AIMessage("next: the trainer, obviously")
            allowed = prompt.split("Allowed now: ", 1)[1]
            if allowed.startswith("data_engineer to start"):
                args = {"next": "data_engineer", "action": "sft_lora", "reason": "LoRA is cheap"}
                args["args"] = {"learning_rate": 5e-4}
            else:
                args = {"next": allowed.split()[0], "reason": f"the step {step} move"}
            return call("RoutingChoice", args, f"s{step}-{attempts[step]}")
        agent = next(a for a in ACTION_TOOL if a.replace("_", "").lower() in system.lower())
        done = any(isinstance(m, ToolMessage) and m.name == ACTION_TOOL[agent] for m in messages)
        if not done:
            return call(ACTION_TOOL[agent], {}, f"{agent}-{len(messages)}")
        report = {"librarian": "LibrarianAnswer", "data_engineer": "DataAnswer"}.get(
            agent, f"{agent.title()}Answer"
        )
        return call(report, {"summary": f"{agent} done"}, f"r-{len(messages)}")

    return script


def llm_agents(model) -> dict:
    """The four agents' bodies driven by `model`, to inject into the graph."""
    answers = {
        "librarian": answers_module.LibrarianAnswer,
        "data_engineer": answers_module.DataAnswer,
        "trainer": answers_module.TrainerAnswer,
        "evaluator": answers_module.EvaluatorAnswer,
    }
    return {
        agent: make_llm_body(agent, PLAYBOOKS[agent], lambda: model, SYSTEM_PROMPTS[agent], schema)
        for agent, schema in answers.items()
    }


def run(tmp_path, model, monkeypatch, name):
    policy = make_llm_router(lambda: model)
    graph = build_graph(
        checkpointer=InMemorySaver(serde=state_serializer()),
        policy=policy,
        bodies=llm_agents(model),
    )
    config = {"configurable": {"thread_id": name}, "recursion_limit": recursion_limit(BUDGET)}
    inputs = {"task": "addition_2d", "budget": BUDGET, "run_dir": str(tmp_path / name)}
    return graph, config, inputs, policy


@pytest.mark.usefixtures("tiny_model")
def test_a_scripted_model_runs_the_lab_to_the_end(tmp_path, tiny_model, monkeypatch):
    # Decisions are numbered by the agent step they start (1-based, as the trajectory is).
    model = ScriptedChatModel(script=expert(invalid_at={4}, once_invalid_at={1}))
    graph, config, inputs, policy = run(tmp_path, model, monkeypatch, "scripted")
    output = graph.invoke({**inputs, "model": str(tiny_model), "options": OPTIONS}, config)
    values = graph.get_state(config).values
    summary = json.loads((tmp_path / "scripted" / "summary.json").read_text())
    assert output["stop_reason"] == "budget_iterations" and summary["best_score"] is not None
    reasons = [d["reason"] for d in summary["decisions"]]
    assert reasons[0] == "the step 1 move" and reasons[2] == "LoRA is cheap"
    # The decision at step 4 stayed invalid three times: the playbook took it, and says so.
    assert reasons[3].startswith("[fallback: invalid RoutingChoice")
    assert sum(r.startswith("[fallback") for r in reasons) == 1
    assert summary["iterations"][0]["technique"] == "sft_lora"
    assert summary["iterations"][0]["spec"]["learning_rate"] == 5e-4
    # The supervisor drains the policy's records into state after every decision.
    assert policy.drain() == ([], [])
    assert [(f.step, f.agent) for f in values["fallbacks"]] == [(4, "supervisor")]
    agents = [u for u in values["llm_usage"] if u.agent != "supervisor"]
    routing = [u for u in values["llm_usage"] if u.agent == "supervisor"]
    assert len(agents) == 5 and len(routing) == 6
    # One call per decision, plus one retry at step 0 and two at step 3.
    assert sum(u.calls for u in routing) == 6 + 1 + 2
    assert summary["llm_usage"]["supervisor"]["calls"] == 9
    assert summary["fallbacks"] == [f.model_dump(mode="json") for f in values["fallbacks"]]


def test_a_model_answering_garbage_still_finalizes(tmp_path, tiny_model, monkeypatch):
    model = ScriptedChatModel(script=["{'next': ??? lorem ipsum"])
    graph, config, inputs, policy = run(tmp_path, model, monkeypatch, "garbage")
    output = graph.invoke({**inputs, "model": str(tiny_model), "options": OPTIONS}, config)
    values = graph.get_state(config).values
    summary = json.loads((tmp_path / "garbage" / "summary.json").read_text())
    assert output["stop_reason"] == "budget_iterations" and summary["baseline_score"] is not None
    assert all(d["reason"].startswith("[fallback: ") for d in summary["decisions"])
    steps = len(values["trajectory"])
    agents = [f for f in values["fallbacks"] if f.agent != "supervisor"]
    routing = [f for f in values["fallbacks"] if f.agent == "supervisor"]
    assert steps == 5 and len(agents) == steps and len(routing) == steps + 1
    assert all(f.reason.startswith("playbook: ") for f in agents)
    assert "## Fallbacks to the playbook" in (tmp_path / "garbage" / "report.md").read_text()


class NoSchemaModel(ScriptedChatModel):
    """Like ChatHuggingFace: no pydantic schema for structured output, but tools bind."""

    def with_structured_output(self, schema, **kwargs):
        raise NotImplementedError("Pydantic schema is not supported for function calling")


def test_models_without_structured_output_route_through_a_tool(tmp_path):
    state = state_for(tmp_path)
    answers = [
        call("RoutingChoice", {"next": "data_engineer", "reason": 3}, 1),
        call("RoutingChoice", {"next": "data_engineer", "action": "sft_full", "reason": "go"}, 2),
    ]
    policy = make_llm_router(lambda: NoSchemaModel(script=answers))
    decision, plan = policy(state, 2, None)
    assert (decision.next, decision.reason, plan.technique) == ("data_engineer", "go", "sft_full")
    usage, fallbacks = policy.drain()
    assert fallbacks == [] and usage[0].calls == 2 and policy.drain() == ([], [])


@pytest.mark.slow
def test_local_smollm2_drives_a_whole_run_offline(tmp_path, tiny_model, monkeypatch):
    graph = build_graph(
        checkpointer=InMemorySaver(serde=state_serializer()),
        policy=build_llm_router("local:smollm2"),
        bodies=build_llm_bodies("local:smollm2"),
    )
    config = {"configurable": {"thread_id": "local"}, "recursion_limit": recursion_limit(30)}
    inputs = {"task": "addition_2d", "budget": 30, "run_dir": str(tmp_path / "local")}
    output = graph.invoke({**inputs, "model": str(tiny_model), "options": OPTIONS}, config)
    summary = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert output["stop_reason"] == summary["stop_reason"] == "budget_iterations"
    values = graph.get_state(config).values
    agents = [u for u in values["llm_usage"] if u.agent != "supervisor"]
    assert len(agents) == len(values["trajectory"]) == 5
    assert all(u.model == "smollm2" and u.calls >= 1 for u in values["llm_usage"])
