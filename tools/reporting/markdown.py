"""The run report: a markdown account of what was tried and why, with its plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from postlab.records.outcomes import ConstantAnswer, HeldPeak, binomial_stderr, target_met
from postlab.records.steps import WAIT_ACTION
from postlab.tools.io.atomic import write_text_atomic
from postlab.tools.io.rundir import REPORT_FILE, portable
from postlab.tools.reporting.figures import ReportPlots, draw_plots
from postlab.tools.reporting.iterations import iteration_sections
from postlab.tools.reporting.synthesis import synthesis
from postlab.tools.reporting.text import md, score_text


def _result_row(summary: dict[str, Any], prefix: str, label: str) -> str:
    validation = score_text(summary.get(f"{prefix}_val_score"), summary.get(f"{prefix}_val_stderr"))
    test = score_text(summary.get(f"{prefix}_score"), summary.get(f"{prefix}_stderr"))
    return f"| {label} | {validation} | {test} | {score_text(summary.get(f'{prefix}_lenient'))} |"


def _test_words(summary: dict[str, Any]) -> str:
    """Who judged test, and for which checkpoints."""
    judge = (summary.get("splits") or {}).get("test_judge")
    if judge and judge != "the task's test split":
        return (
            f"test was judged by the external command `{judge}` (PostTrainBench contract; the "
            "lab never read its data), only for the baseline and the selected best (and for "
            "new bests when candidates were allowed, never decided on). ± on test is the "
            "judge's own standard error; on validation, one binomial standard error."
        )
    return (
        f"test ({summary.get('best_test_n') or '—'} items) was scored only for the baseline and "
        "the selected best. ± is one binomial standard error."
    )


def _target_line(summary: dict[str, Any]) -> str:
    target, best = summary.get("target_score"), summary.get("best_val_score")
    if target is None:
        return "**Target:** none set"
    if best is None:
        return f"**Target:** {target:.2f} validation accuracy — not reached (nothing trained)"
    verdict = "met" if target_met(best, target, _floor(summary)) else "missed"
    return f"**Target:** {target:.2f} validation accuracy — {verdict} (best {best:.2f})"


def _floor(summary: dict[str, Any]) -> ConstantAnswer | None:
    constant = summary.get("constant_answer")
    return ConstantAnswer.model_validate(constant) if constant else None


def _use_and_reproduce(summary: dict[str, Any]) -> list[str]:
    """How to load the best model, and the command (and versions) that rerun this run."""
    lines = []
    if summary.get("best_checkpoint"):
        lines += [
            "",
            "## Use it",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f'path = "{summary["best_checkpoint"]}"  # relative paths are inside this run folder',
            "model = AutoModelForCausalLM.from_pretrained(path)",
            "tokenizer = AutoTokenizer.from_pretrained(path)",
            "```",
        ]
    options = summary.get("options") or {}
    if not options:
        return lines
    where = (
        f"--task-dir {summary['task_dir']}"
        if summary.get("task_dir")
        else f"--task {summary['task']}"
    )
    flags = [
        f"--{name.replace('_', '-')} {options[name]}"
        for name in (
            "max_iterations",
            "train_steps",
            "train_size",
            "batch_size",
            "num_processes",
            "seed",
        )
        if options.get(name) is not None
    ]
    flags.append(f"--target {options.get('target_score')}")
    if options.get("eval_limit"):
        flags.append(f"--eval-limit {options['eval_limit']}")
    if options.get("techniques"):
        flags.append(f"--techniques {','.join(options['techniques'])}")
    command = (
        f"postlab run {where} --model {summary['base_model']} --budget {summary['budget']} "
        + " ".join(flags)
    )
    versions = ", ".join(f"{k} {v}" for k, v in (summary.get("versions") or {}).items())
    lines += ["", "## Reproduce it", "", "```bash", command, "```", ""]
    lines.append(
        f"Versions: {versions}; postlab source {summary.get('source_revision') or 'unknown'}."
    )
    return lines


def _training(curves_plot: str | None, noticed: list[str]) -> list[str]:
    if curves_plot is None:
        return []
    lines = ["", "## Training", "", f"![training curves]({curves_plot})", ""]
    if noticed:
        lines += ["Anomalies noticed:", "", *[f"- {line}" for line in noticed]]
    else:
        lines.append("No anomaly noticed (gradient spikes, a non-finite or rising loss).")
    return [*lines, ""]


def _tracker(summary: dict[str, Any]) -> list[str]:
    tracker = summary.get("tracker")
    if not tracker:
        return []
    line = f"Every training step and evaluation: {tracker['where']}."
    if tracker.get("problem"):
        line += f" The evaluations were not logged: {md(tracker['problem'])}."
    return ["", "## Metrics", "", line, ""]


def _header(summary: dict[str, Any], plot: str | None) -> list[str]:
    lines = [
        f"# postlab run {summary['run_id']}",
        "",
        f"**Goal:** {md(summary['goal'])}  ",
        f"**Task:** {summary['task']} · **Base model:** {summary['base_model']}  ",
        f"**Stopped:** {summary['stop_reason']} — {md(summary.get('stop_detail', ''))}  ",
        f"**Steps:** {summary['steps_used']} of {summary['budget']} · "
        f"**Wall time:** {summary.get('wall_s', 0):.0f}s"
        + (f" · **Paid compute:** ${summary['spend_usd']:.2f}" if summary.get("spend_usd") else "")
        + "  ",
        _target_line(summary),
        "",
        "## Result",
        "",
        "| | validation strict | test strict | test lenient |",
        "| --- | --- | --- | --- |",
        _result_row(summary, "baseline", "baseline"),
        _result_row(summary, "best", f"best ({summary.get('best_label', '—')})"),
        *_constant_row(summary),
        "",
        f"Every decision (continue, switch, stop, which checkpoint is best) read validation "
        f"({summary.get('best_val_n') or '—'} items{_balanced_words(summary)}); "
        f"{_test_words(summary)}",
        "",
        f"Best checkpoint: `{summary['best_checkpoint']}`",
        *_held_words(summary),
        *_restored_words(summary),
        *_floor_words(summary),
    ]
    return lines + ["", f"![accuracy per iteration]({plot})"] if plot else lines


def _constant_row(summary: dict[str, Any]) -> list[str]:
    """The Result table's row for one answer given to everything, on a label task."""
    floor = _floor(summary)
    if floor is None:
        return []
    val_text = score_text(floor.validation, binomial_stderr(floor.validation, floor.validation_n))
    test = floor.test
    test_text = score_text(test, binomial_stderr(test, floor.test_n) if test is not None else None)
    return [f"| {md(floor.describe())} | {val_text} | {test_text} | — |"]


def _evaluation(summary: dict[str, Any], label: str | None) -> dict[str, Any] | None:
    """The summary's validation record of the checkpoint `label`, if it has one."""
    return next((e for e in summary.get("evaluations") or [] if e.get("label") == label), None)


def _floor_words(summary: dict[str, Any]) -> list[str]:
    """Whether the best is more than one answer given to everything: a collapse, or a
    validation score no higher than the constant answer's, says it learned no skill."""
    label, best = summary.get("best_label"), summary.get("best_val_score")
    record = _evaluation(summary, label)
    if record is None or best is None:
        return []
    floor = _floor(summary)
    below = floor is not None and not floor.cleared_by(best)
    if not record.get("collapse") and not below:
        return []
    if record.get("collapse"):
        words = (
            f"{label} gave one and the same answer to {record['collapse']:.0%} of validation "
            "questions (a collapse): its score comes mostly from that one answer, not a skill"
        )
    else:
        words = f"{label} learned no skill beyond one answer given to everything"
    if floor is not None:
        at_most = "no higher than" if below else "against"
        words += (
            f"; on validation it scores {best:.2f}, {at_most} {floor.validation:.2f} for always "
            f"answering {md(repr(floor.answer))}"
        )
    return ["", words + "."]


def _held_words(summary: dict[str, Any]) -> list[str]:
    """Why the best is not the iteration with the highest validation score, when it is not."""
    held = summary.get("best_held")
    if not held:
        return []
    return [
        "",
        f"{summary.get('best_label')} is the best without beating the highest validation score: "
        f"it is {HeldPeak.model_validate(held).describe()}, so it took the best's place.",
    ]


def _restored_words(summary: dict[str, Any]) -> list[str]:
    """Why the best is an early iteration when later ones took its place in a label phase."""
    over, peak = summary.get("best_restored_over"), summary.get("best_val_score")
    if not over or peak is None:
        return []
    record = _evaluation(summary, over)
    score = f" ({record['strict']:.2f})" if record else ""
    return [
        "",
        f"{summary.get('best_label')} was set aside in a label phase, when a collapsed stretch "
        "went on with its schedule and took the best's place; nothing since beat its "
        f"{peak:.2f} on validation, so it is the result, not "
        f"{over}{score}, the last to hold that place.",
    ]


def _balanced_words(summary: dict[str, Any]) -> str:
    if not any(e.get("balanced_by_label") for e in summary.get("evaluations") or []):
        return ""
    return (
        ", each answer counted equally: validation is a slice of the training file, and its "
        "answers' shares are no evidence of test's"
    )


def _techniques(summary: dict[str, Any]) -> list[str]:
    lines = ["## Techniques from the literature", ""]
    for rank, finding in enumerate(summary.get("findings", []), start=1):
        papers = "; ".join(
            f"{md(p['title'])} ({p['year']}, {md(p['id'])})" for p in finding["papers"]
        )
        runnable = "" if finding["runnable"] else " (not runnable)"
        lines.append(f"{rank}. **{md(finding['name'])}**{runnable} — {papers}")
        if finding.get("fit_notes"):
            # Rank is relevance × fit: say what the task's measurements did to this card.
            why = "; ".join(md(note) for note in finding["fit_notes"])
            lines.append(
                f"   relevance {finding['relevance']:.2f} × fit {finding['fit']:.2f}: {why}"
            )
    if summary.get("source_notes"):
        lines += ["", "Sources: " + "; ".join(md(note) for note in summary["source_notes"])]
    return lines


def _lessons(summary: dict[str, Any]) -> list[str]:
    rows = [
        f"- {md(e['technique'])} on {md(e['task'])}: validation {e['effect']:+.2f} per iteration "
        f"over {e['iterations']} iteration(s), {e['steps']} steps"
        for e in summary.get("lessons_filed") or []
    ]
    if summary.get("library_note"):
        rows.append(f"- {md(summary['library_note'])}")
    return rows


def _listing(title: str, rows: list[str]) -> list[str]:
    return ["", f"## {title}", "", *rows] if rows else []


def _usage(summary: dict[str, Any]) -> list[str]:
    usage = summary.get("llm_usage") or {}
    if not usage:
        return []
    rows = ["| agent | model | calls | tokens in | tokens out | cost |", "| --- " * 6 + "|"]
    for agent, use in usage.items():
        cost = "—" if use.get("cost_usd") is None else f"${use['cost_usd']:.4f}"
        rows.append(
            f"| {agent} | {use.get('model', '')} | {use['calls']} | {use['input_tokens']} | "
            f"{use['output_tokens']} | {cost} |"
        )
    return _listing("Model usage", rows)


def _decision_lines(decisions: list[dict[str, Any]]) -> list[str]:
    """A line per decision; a run of waits on one remote job is one line."""
    lines: list[str] = []
    waits: list[dict[str, Any]] = []

    def flush() -> None:
        if waits:
            steps = (
                f"{waits[0]['step']}–{waits[-1]['step']}" if len(waits) > 1 else waits[0]["step"]
            )
            lines.append(
                f"- steps {steps} → trainer: waited on the remote job ({len(waits)} looks)"
            )
            waits.clear()

    for decision in decisions:
        if (decision.get("directive") or {}).get("action") == WAIT_ACTION:
            waits.append(decision)
            continue
        flush()
        lines.append(f"- step {decision['step']} → {decision['next']}: {md(decision['reason'])}")
    flush()
    return lines


def render_report(
    summary: dict[str, Any],
    plot: str | None,
    curves_plot: str | None = None,
    noticed: list[str] | None = None,
) -> str:
    """The report as markdown: goal, baseline, iterations with reasons, techniques, best model."""
    get = summary.get
    decisions = _decision_lines(get("decisions", []))
    guard = [
        f"- step {e['step']}: {e['pattern']} → {e['rung']}: {md(e['detail'])}"
        for e in get("guard_events") or []
    ]
    fallbacks = [
        f"- step {f['step']} ({f['agent']}): {md(f['reason'])}" for f in get("fallbacks") or []
    ]
    gates = [
        f"- step {g['step']}: {g['gate']} (cost {g['cost']:g}) "
        f"{'approved' if g['approved'] else 'rejected'} by {g['by']}: {md(g['note'])}"
        for g in get("gate_decisions") or []
    ]
    samples = get("error_analysis") or []
    misses = [
        f"- ({s['category']}) {md(repr(s['prompt']))} → {md(repr(s['completion']))}, "
        f"expected {md(repr(s['answer']))}"
        for s in samples
    ]
    if misses and get("best_misses"):
        misses.insert(
            0, f"A sample of {len(samples)} of its {get('best_misses')} validation misses:\n"
        )
    lines = [
        *_header(summary, plot),
        "",
        *iteration_sections(summary),
        *_training(curves_plot, noticed or []),
        *_tracker(summary),
        *_techniques(summary),
        *synthesis(summary),
        *_listing("Decisions", decisions),
        *_listing("Loop guard", guard),
        *_usage(summary),
        *_listing("Fallbacks to the playbook", fallbacks),
        *_listing("Approval gates", gates),
        *_listing("Error analysis of the best model", misses),
        *_listing("Filed in the library for later runs", _lessons(summary)),
        *_use_and_reproduce(summary),
    ]
    return "\n".join(lines) + "\n"


def write_report(run_dir: Path, summary: dict[str, Any], plots: ReportPlots | None = None) -> Path:
    """Write report.md (and its plots, unless drawn already) into the run directory."""
    plots = plots or draw_plots(run_dir, summary)
    # Paths inside the run folder are written relative to it, so the report travels with it.
    text = render_report(portable(summary, run_dir), plots.scores, plots.curves, plots.noticed)
    return write_text_atomic(run_dir / REPORT_FILE, text)
