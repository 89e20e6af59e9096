"""The playbook policy: the supervisor's deterministic routing, as an expert would proceed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from postlab.records.hyper import DEFAULT_GRPO_GROUP, DEFAULT_LORA_RANK, Hyper
from postlab.records.outcomes import TechniqueFinding
from postlab.records.run import RunOptions, StopReason
from postlab.records.state import LabState
from postlab.records.steps import Decision, Directive, GuardEvent, Plan

# Full fine-tuning fits comfortably below this weight size; above it LoRA is the default.
FULL_FINETUNE_MAX_BYTES = 4 * 1024**3
# Ranges the papers' learning rates are clamped into: the papers tune billion-parameter models,
# whose full fine-tuning LRs (~1e-5) barely move a ~100M model in the few dozen steps a CPU allows.
LR_RANGE = {"sft_full": (1e-4, 3e-4), "sft_lora": (2e-4, 1e-3), "grpo": (5e-6, 2e-5)}
DEFAULT_LR = {"sft_full": 1e-4, "sft_lora": 2e-4, "grpo": 1e-5}


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def weights_bytes(checkpoint: str) -> int:
    """Size of a checkpoint's weight files, a proxy for whether full fine-tuning fits."""
    folder = Path(checkpoint)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors")) or sum(
        f.stat().st_size for f in folder.glob("*.bin")
    )


def hyper_for(finding: TechniqueFinding, options: RunOptions) -> Hyper:
    """Hyper-parameters for a technique: the card's recipe, clamped to what this budget can run."""
    recipe = finding.recipe
    low, high = LR_RANGE[finding.key]
    values: dict[str, Any] = {
        "adapter": "lora" if finding.key == "sft_lora" else "full",
        "learning_rate": _clamp(recipe.get("learning_rate", DEFAULT_LR[finding.key]), low, high),
        "max_steps": options.train_steps,
        "batch_size": options.batch_size,
    }
    if finding.key == "sft_lora":
        values["lora_r"] = int(recipe.get("lora_r", DEFAULT_LORA_RANK))
    if finding.key == "grpo":
        values.update(
            num_generations=DEFAULT_GRPO_GROUP,
            beta=float(recipe.get("beta", 0.0)),
            max_steps=max(1, options.train_steps // 2),
        )
    return Hyper.model_validate(values)


def _cites(finding: TechniqueFinding) -> str:
    return ", ".join(f"{paper.title} ({paper.id})" for paper in finding.papers[:2]) or "no paper"


def _runnable(state: LabState) -> list[TechniqueFinding]:
    return [finding for finding in state.get("findings") or [] if finding.runnable]


def first_technique(state: LabState) -> TechniqueFinding | None:
    """The opening technique: supervised fine-tuning, full when the weights fit, else LoRA."""
    sft = [f for f in _runnable(state) if f.method == "sft"]
    if not sft:
        return None
    small = weights_bytes(state["base_model_path"]) < FULL_FINETUNE_MAX_BYTES
    preferred = "sft_full" if small else "sft_lora"
    return next((f for f in sft if f.key == preferred), sft[0])


def next_technique(state: LabState, current: str) -> TechniqueFinding | None:
    """The best-ranked runnable technique not tried yet; GRPO only once a trained model exists."""
    tried = set(state.get("tried_techniques") or []) | {current}
    has_trained_best = (state.get("best") or None) is not None and state["best"].iteration > 0
    for finding in _runnable(state):
        if finding.key in tried:
            continue
        if finding.method == "grpo" and not has_trained_best:
            continue
        return finding
    return None


def new_plan(
    state: LabState,
    finding: TechniqueFinding,
    reason: str,
    hyper: Hyper | None = None,
    lr_halved: bool = False,
) -> Plan:
    """A fresh iteration for `finding`, starting from the best checkpoint so far."""
    options: RunOptions = state["run_options"]
    previous = state.get("plan")
    iteration = previous.iteration + 1 if previous else 1
    best = state.get("best")
    init = best.checkpoint if best and best.iteration > 0 else state["base_model_path"]
    method = "grpo" if finding.key == "grpo" else "sft"
    size = options.train_size if method == "sft" else max(16, options.train_size // 4)
    return Plan(
        iteration=iteration,
        technique=finding.key,
        method=method,
        init_checkpoint=init,
        hyper=hyper or hyper_for(finding, options),
        data_format=method,
        data_size=size,
        data_seed=options.seed * 1000 + iteration,
        reason=reason,
        lr_halved=lr_halved,
    )


def _finding(state: LabState, key: str) -> TechniqueFinding | None:
    return next((f for f in state.get("findings") or [] if f.key == key), None)


def refine(state: LabState, plan: Plan) -> tuple[Plan | None, str]:
    """After an iteration: fix a failure, continue a gain, lower the LR, or switch technique.

    Returns the next plan and what kind of move it is, or None and why nothing is left.
    """
    options: RunOptions = state["run_options"]
    finding = _finding(state, plan.technique)
    if plan.status == "failed":
        run = next(r for r in reversed(state.get("runs") or []) if r.iteration == plan.iteration)
        failure = run.result.failure
        kind = failure.kind if failure else "crash"
        hyper = plan.hyper
        if kind == "oom" and hyper.batch_size > 1:
            hyper = hyper.with_changes(
                batch_size=max(1, hyper.batch_size // 2), grad_accum=hyper.grad_accum * 2
            )
            why = "out of memory: halve the batch, double gradient accumulation"
        elif kind == "nan":
            hyper = hyper.with_changes(learning_rate=hyper.learning_rate / 4)
            why = "loss diverged: quarter the learning rate"
        elif kind == "timeout":
            hyper = hyper.with_changes(max_steps=max(1, hyper.max_steps // 2))
            why = "training timed out: halve the steps"
        else:
            alternative = next_technique(state, plan.technique)
            if alternative is None:
                return None, f"{plan.technique} failed ({kind}) and no other technique is left"
            return new_plan(
                state,
                alternative,
                f"{plan.technique} failed ({kind}); switch to "
                f"{alternative.name} from {_cites(alternative)}",
            ), "switch"
        assert finding is not None
        return new_plan(state, finding, f"iteration {plan.iteration} {why}", hyper), "fix"

    evaluations = state.get("evaluations") or []
    this = next(e for e in reversed(evaluations) if e.iteration == plan.iteration)
    before = max(e.strict for e in evaluations if e is not this)
    if this.strict >= before + options.guard.min_improvement and finding is not None:
        reason = (
            f"iteration {plan.iteration} raised strict accuracy {before:.2f} → {this.strict:.2f}: "
            f"continue {finding.name} from the new best on fresh data"
        )
        return new_plan(state, finding, reason, plan.hyper), "continue"
    if finding is not None and not plan.lr_halved:
        hyper = plan.hyper.with_changes(learning_rate=plan.hyper.learning_rate / 2)
        reason = (
            f"iteration {plan.iteration} did not beat {before:.2f} ({this.strict:.2f}): "
            "halve the learning rate and restart from the best checkpoint"
        )
        return new_plan(state, finding, reason, hyper, lr_halved=True), "lower_lr"
    alternative = next_technique(state, plan.technique)
    if alternative is None:
        return None, "no improvement and no untried technique left"
    reason = (
        f"{plan.technique} stopped improving at {before:.2f}: switch to {alternative.name} "
        f"({_cites(alternative)})"
    )
    return new_plan(state, alternative, reason), "switch"


def _route(plan: Plan, step: int, reason: str) -> Decision:
    if plan.status == "needs_data":
        directive = Directive(agent="data_engineer", action="build_dataset", reason=reason)
    elif plan.status == "needs_training":
        directive = Directive(agent="trainer", action="train", reason=reason)
    else:
        directive = Directive(agent="evaluator", action="evaluate", reason=reason)
    return Decision(step=step, next=directive.agent, reason=reason, directive=directive)


def stop(step: int, reason: StopReason, detail: str, event: GuardEvent | None = None) -> Decision:
    """A decision to end the run and finalize."""
    return Decision(
        step=step,
        next="finalize",
        reason=detail,
        stop_reason=reason,
        guard_event=event.key if event else None,
    )


def decide(state: LabState, step: int, event: GuardEvent | None) -> tuple[Decision, Plan | None]:
    """The next decision, and the plan it starts or continues (None when nothing changes)."""
    options: RunOptions = state["run_options"]
    if state.get("baseline") is None:
        directive = Directive(
            agent="evaluator",
            action="baseline",
            reason="measure the base model before changing anything",
        )
        return Decision(
            step=step, next="evaluator", reason=directive.reason, directive=directive
        ), None
    if not state.get("findings"):
        directive = Directive(
            agent="librarian",
            action="research",
            reason="find techniques that fit this task in the literature",
        )
        return Decision(
            step=step, next="librarian", reason=directive.reason, directive=directive
        ), None

    plan = state.get("plan")
    best = state.get("best")
    if event is not None and event.rung in ("redirect", "switch_technique") and plan is not None:
        alternative = next_technique(state, plan.technique)
        if alternative is None:
            reason = StopReason.PLATEAU if event.pattern == "plateau" else StopReason.LOOP
            return stop(
                step, reason, f"{event.detail}; no other technique to switch to", event
            ), None
        reason = f"loop guard ({event.pattern}): {event.detail}; stop {plan.technique}, " + (
            f"switch to {alternative.name} ({_cites(alternative)})"
        )
        switched = new_plan(state, alternative, reason)
        decision = _route(switched, step, reason)
        decision.guard_event = event.key
        decision.directive.avoid = [plan.technique]
        return decision, switched

    if plan is None:
        finding = first_technique(state)
        if finding is None:
            return stop(step, StopReason.ERROR, "the librarian found no runnable technique"), None
        reason = f"start with {finding.name}, ranked for this task by {_cites(finding)}"
        plan = new_plan(state, finding, reason)
        return _route(plan, step, reason), plan
    if plan.status not in ("done", "failed"):
        return _route(
            plan, step, f"iteration {plan.iteration}: {plan.status.replace('_', ' ')}"
        ), None

    if best is not None and best.strict >= options.target_score:
        detail = (
            f"best strict accuracy {best.strict:.2f} meets the target {options.target_score:.2f}"
        )
        return stop(step, StopReason.TARGET_MET, detail), None
    if plan.iteration >= options.max_iterations:
        detail = f"all {options.max_iterations} iterations used"
        return stop(step, StopReason.BUDGET_ITERATIONS, detail), None
    refined, why = refine(state, plan)
    if refined is None:
        return stop(step, StopReason.PLATEAU, why), None
    return _route(refined, step, refined.reason), refined
