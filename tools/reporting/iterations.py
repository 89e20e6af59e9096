"""The report's iterations: what each trained on and why, what it scored on validation, which
misses it left for the next decision, and how it ended."""

from __future__ import annotations

from typing import Any

from postlab.tools.reporting.text import md, score_text

# A recipe's listed targets (kinds of question, labels) the report names before "and N more".
LISTED_MAX = 4


def _spec_text(spec: dict[str, Any]) -> str:
    keys = ["method", "adapter", "learning_rate", "max_steps", "batch_size", "grad_accum"]
    if spec.get("num_processes", 1) > 1:
        keys.append("num_processes")
    if spec.get("adapter") == "lora":
        keys += ["lora_r", "lora_alpha"]
    if spec.get("method") == "grpo":
        keys += ["num_generations", "beta"]
    shown = [key for key in keys if key in spec]
    return ", ".join(
        f"{key} {spec[key]:g}" if isinstance(spec[key], float) else f"{key} {spec[key]}"
        for key in shown
    )


def _data_text(card: dict[str, Any] | None, spec: dict[str, Any]) -> str:
    """A dataset card in one line: recipe, size, epochs trained, and what the recipe counted."""
    if card is None:
        return "none built"
    drawn = spec.get("max_steps", 0) * spec.get("batch_size", 0) * spec.get("grad_accum", 1)
    drawn *= spec.get("num_processes", 1)
    if spec.get("method") == "grpo":
        drawn //= spec.get("num_generations") or 1
    epochs = f", {drawn / card['final_size']:.2f} epochs" if drawn and card["final_size"] else ""
    recipe_stats = card.get("recipe_stats") or {}
    stats = {key.replace("_", " "): value for key, value in recipe_stats.items()}
    counted = ", ".join(
        [f"{key} {value}" for key, value in stats.items() if isinstance(value, int | float)]
        + [f"{key}: {_listed(value)}" for key, value in stats.items() if _strings(value)]
    )
    text = f"{card.get('recipe', 'plain')} recipe, {card['final_size']} rows{epochs}"
    return f"{text} ({counted})" if counted else text


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _listed(values: list[str]) -> str:
    """What a recipe aimed at (kinds of question, labels), quoted; the first few when many."""
    shown = "; ".join(f"'{md(value)}'" for value in values[:LISTED_MAX])
    more = len(values) - LISTED_MAX
    return f"{shown} and {more} more" if more > 0 else shown


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}s"


def _effect(parent: dict[str, Any] | None, score: float | None) -> str:
    """The change on validation from the node this iteration grew from."""
    if parent is None or score is None or parent.get("strict") is None:
        return ""
    label = parent.get("label") or f"iteration {parent.get('iteration')}"
    return f" ({score - parent['strict']:+.2f} against {label}'s {parent['strict']:.2f})"


def _misses(evaluation: dict[str, Any] | None) -> str:
    """An evaluation's misses by category, largest first."""
    categories = (evaluation or {}).get("error_categories") or {}
    misses = sorted(
        ((count, name) for name, count in categories.items() if name != "correct"), reverse=True
    )
    text = ", ".join(f"{md(name)} {count}" for count, name in misses if count)
    collapse = (evaluation or {}).get("collapse") or 0
    if collapse:
        text += f"; {collapse:.0%} of answers identical (collapse)"
    return text


def iteration_sections(summary: dict[str, Any]) -> list[str]:
    """The report's Iterations section: for each, where it grew from, why, its data and spec,
    its time, its validation score and misses, and any failure."""
    lines = ["## Iterations", ""]
    if not summary["iterations"]:
        lines.append("No iteration ran.")
    cards = {card["path"]: card for card in summary.get("datasets") or []}
    scored = {e["iteration"]: e for e in summary.get("evaluations") or []}
    for it in summary["iterations"]:
        parent = it.get("parent") or 0
        origin = f"iteration {parent}" if parent else "the base model"
        lines += [
            f"### Iteration {it['iteration']}: {it['technique']} — {it['status']}",
            "",
            f"- From: {origin}, by {md(it.get('move') or 'open')}",
            f"- Why: {md(it['reason'])}",
            f"- Data: {_data_text(cards.get(it.get('dataset') or ''), it.get('spec') or {})}",
            f"- Spec: {_spec_text(it.get('spec') or {}) or 'not trained'}",
            f"- Engine: {md((it.get('spec') or {}).get('backend_reason') or 'plain TRL')}"
            + (
                f"; on Hugging Face Jobs ({it['job']['flavor']}, job {it['job']['id']}, "
                f"${it.get('spend_usd') or 0:.2f})"
                if it.get("job")
                else ""
            ),
            *(
                [f"- Compute: {md(it['compute'])}"]
                if it.get("compute") and it["compute"] != "local, as asked"
                else []
            ),
            f"- Time: {_seconds(it.get('train_s'))} training, {_seconds(it.get('eval_s'))} scoring",
            f"- Validation: strict {score_text(it.get('score'))}, "
            f"lenient {score_text(it.get('lenient'))}"
            + _effect(scored.get(parent), it.get("score")),
        ]
        if misses := _misses(scored.get(it["iteration"])):
            lines.append(f"- Validation misses by category (read by the next decision): {misses}")
        for cluster in (scored.get(it["iteration"]) or {}).get("miss_clusters") or []:
            lines.append(_cluster_line(cluster))
        if it.get("failure"):
            lines.append(f"- Failure: {md(it['failure'])}")
        lines.append("")
    return lines


def _cluster_line(cluster: dict[str, Any]) -> str:
    """A group of alike free-form misses, and how the model does on the questions near it."""
    example = cluster["example"]
    line = (
        f"- {cluster['size']} free-form misses ({cluster['share']:.0%}) resemble: "
        f"{md(example['prompt'])} → {md(example['completion'])} (expected {md(example['answer'])})"
    )
    if cluster.get("near_items"):
        verdict = "a weak region" if cluster.get("unlearned") else "no weak region"
        line += (
            f"; {cluster['near_items']} validation questions lie near them, "
            f"{cluster['near_accuracy']:.0%} right against {cluster['rest_accuracy']:.0%} "
            f"of the rest ({verdict})"
        )
    return line
