"""The model card of a run's best checkpoint, built from summary.json with huggingface_hub."""

from __future__ import annotations

from typing import Any

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import EvalResult

from postlab.records.outcomes import ConstantAnswer, binomial_stderr
from postlab.tools.io.rundir import iteration_label
from postlab.tools.models.resolution import ALIASES, hub_id
from postlab.tools.reporting.text import md


def _score(summary: dict[str, Any], prefix: str) -> str:
    score, stderr = summary.get(f"{prefix}_score"), summary.get(f"{prefix}_stderr")
    if score is None:
        return "not scored"
    return f"{score:.3f} ± {stderr:.3f}" if stderr is not None else f"{score:.3f}"


def winning_iteration(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The iteration that produced the best checkpoint (None when the best is the base model)."""
    label = summary.get("best_label")
    return next(
        (it for it in summary.get("iterations") or [] if iteration_label(it["iteration"]) == label),
        None,
    )


def _recipe(iteration: dict[str, Any] | None) -> list[str]:
    if iteration is None:
        return ["- No training iteration beat the base model; the base model is the result."]
    spec = iteration.get("spec") or {}
    keys = ("method", "adapter", "learning_rate", "max_steps", "batch_size", "lora_r", "beta")
    settings = ", ".join(f"{k} {spec[k]}" for k in keys if spec.get(k) not in (None, ""))
    return [
        f"- Technique: `{iteration['technique']}` (iteration {iteration['iteration']}, "
        f"move `{iteration.get('move') or 'open'}`)",
        f"- Settings: {settings}",
        f"- Why: {' '.join(str(iteration.get('reason', '')).split())}",
    ]


def _papers(summary: dict[str, Any], technique: str | None) -> list[str]:
    finding = next((f for f in summary.get("findings") or [] if f["key"] == technique), None)
    papers = finding.get("papers", []) if finding else []
    if not papers:
        return ["- none cited"]
    return [f"- {p['title']} (arXiv {p['id']})" for p in papers]


def _datasets(summary: dict[str, Any]) -> list[str]:
    rows = [
        "| dataset | source | license | rows | duplicates removed | contaminated removed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for card in summary.get("datasets") or []:
        rows.append(
            f"| {card['name']} | {card.get('source') or '—'} | {card.get('license') or '—'} | "
            f"{card.get('final_size')} | {card.get('duplicates_removed', 0)} | "
            f"{card.get('contaminated_removed', 0)} |"
        )
    return rows


def _constant_row(summary: dict[str, Any]) -> list[str]:
    """One answer given to everything, on a label task: the floor the rows above must clear."""
    constant = summary.get("constant_answer")
    if not constant:
        return []
    floor = ConstantAnswer.model_validate(constant)
    cells = [
        f"{score:.3f} ± {binomial_stderr(score, n):.3f}" if score is not None else "not scored"
        for score, n in ((floor.validation, floor.validation_n), (floor.test, floor.test_n))
    ]
    return [f"| {md(floor.describe())} | {cells[0]} | {cells[1]} |"]


def model_card(summary: dict[str, Any], repo_id: str) -> ModelCard:
    """A Hub model card whose numbers are summary.json's: scores with errors, recipe, sources."""
    task = summary.get("task") or "task folder"
    winner = winning_iteration(summary)
    technique = winner["technique"] if winner else None
    licenses = sorted({c["license"] for c in summary.get("datasets") or [] if c.get("license")})
    results = []
    if summary.get("best_score") is not None:
        results.append(
            EvalResult(
                task_type="text-generation",
                dataset_type=task,
                dataset_name=task,
                dataset_split="test",
                metric_type="accuracy",
                metric_value=summary["best_score"],
                metric_name="strict accuracy",
            )
        )
    base = str(summary.get("base_model"))
    base_repo = hub_id(base)
    origin = base_repo or f"a local checkpoint ({base})"
    if base in ALIASES:
        origin += f" (dequantized from {ALIASES[base][1]})"
    data = ModelCardData(
        base_model=base_repo,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=["postlab", "trl", *([technique] if technique else [])],
        model_name=repo_id,
        eval_results=results or None,
    )
    lines = [
        "---",
        data.to_yaml(),
        "---",
        "",
        f"# {repo_id}",
        "",
        f"{origin} post-trained by postlab for **{task}** "
        f"(run `{summary.get('run_id')}`: {' '.join(str(summary.get('goal', '')).split())}).",
        "",
        "## Results",
        "",
        "| | validation (decided on) | test (reported) |",
        "| --- | --- | --- |",
        f"| base model | {summary.get('baseline_val_score')} | {_score(summary, 'baseline')} |",
        f"| this model ({summary.get('best_label')}) | {summary.get('best_val_score')} | "
        f"{_score(summary, 'best')} |",
        *_constant_row(summary),
        "",
        f"Split sizes: validation {summary.get('best_val_n')}, test "
        f"{summary.get('best_test_n')}. Test judge: "
        f"{(summary.get('splits') or {}).get('test_judge', 'the task test split')}. "
        "± is one standard error. Validation chose the checkpoint; test was never decided on.",
        "",
        "## Recipe",
        "",
        *_recipe(winner),
        "",
        "## Papers behind the recipe",
        "",
        *_papers(summary, technique),
        "",
        "## Training data",
        "",
        *_datasets(summary),
        "",
        f"Data licenses: {', '.join(licenses) if licenses else 'generated by the task, none'}. "
        "Rows sharing an n-gram with the test split were removed (the counts above).",
        "",
        "## Intended use and limits",
        "",
        f"- Made for {task} in the format it was trained on; outside it the model is the base "
        "model at best, and may be worse.",
        "- The scores hold for this task's test split only; a small model's accuracy elsewhere "
        "is not measured here.",
        "- Not reviewed for safety or bias beyond the base model's own card.",
    ]
    return ModelCard("\n".join(lines) + "\n")
