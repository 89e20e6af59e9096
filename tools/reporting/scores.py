"""The accuracy plot: validation strict and lenient accuracy per iteration, baseline, target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from postlab.records.outcomes import binomial_stderr

PLOT_FILE = "scores.png"


def plot_scores(summary: dict[str, Any], path: Path) -> Path | None:
    """Plot validation strict and lenient accuracy per iteration against the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [it for it in summary["iterations"] if it.get("score") is not None]
    baseline = summary.get("baseline_val_score")
    if baseline is None:
        return None
    xs = [0] + [it["iteration"] for it in scored]
    strict = [baseline] + [it["score"] for it in scored]
    base_lenient = next(
        (e["lenient"] for e in summary.get("evaluations") or [] if e["iteration"] == 0), 0.0
    )
    lenient = [base_lenient] + [it.get("lenient") or 0.0 for it in scored]
    sizes = {e["iteration"]: e.get("n") or 0 for e in summary.get("evaluations") or []}
    errors = [
        binomial_stderr(value, sizes.get(x) or 0) for x, value in zip(xs, strict, strict=True)
    ]
    figure, axis = plt.subplots(figsize=(6, 3.5), dpi=110)
    axis.errorbar(xs, strict, yerr=errors, marker="o", capsize=3, label="strict (± 1 s.e.)")
    axis.plot(xs, lenient, marker="s", linestyle="--", label="lenient")
    axis.axhline(baseline, color="grey", linewidth=0.8, label="baseline (strict)")
    if summary.get("target_score") is not None:
        axis.axhline(summary["target_score"], color="green", linestyle=":", label="target")
    axis.set_xticks(xs, ["base"] + [f"it{x}" for x in xs[1:]])
    axis.set_ylim(-0.02, 1.02)
    axis.set_ylabel("validation accuracy")
    axis.set_title(f"{summary['task']}: accuracy per iteration")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp)
    plt.close(figure)
    tmp.replace(path)
    return path
