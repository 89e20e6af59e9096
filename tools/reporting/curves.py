"""Training curves read back from each iteration's train.log: a figure and the anomalies in it."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import median
from typing import Any

from postlab.tools.training.failures import LOG_FILE, parse_event

CURVES_FILE = "training.png"
# A gradient norm this many times the iteration's median is a spike worth a line in the report.
GRAD_SPIKE_FACTOR = 10.0
# Final loss this much above the iteration's lowest: training drifted back up.
LOSS_RISE_FACTOR = 1.5


def read_curves(iterations: list[dict[str, Any]]) -> dict[int, list[dict[str, float]]]:
    """Per iteration, the progress events (step, loss, grad_norm, learning_rate) of its log."""
    curves: dict[int, list[dict[str, float]]] = {}
    for iteration in iterations:
        output_dir = (iteration.get("spec") or {}).get("output_dir")
        if not output_dir:
            continue
        try:
            lines = (Path(output_dir) / LOG_FILE).read_text(errors="replace").splitlines()
        except OSError:
            continue
        points = []
        for line in lines:
            event = parse_event(line) or {}
            if event.get("event") == "progress" and isinstance(event.get("step"), int):
                points.append(
                    {
                        key: float(event[key])
                        for key in ("step", "loss", "grad_norm", "learning_rate")
                        if isinstance(event.get(key), int | float)
                    }
                )
        if points:
            curves[iteration["iteration"]] = points
    return curves


def in_order(iterations: list[dict[str, Any]]) -> set[int]:
    """The iterations that read their rows in the order given (a curriculum's, easy to hard)."""
    return {
        iteration["iteration"]
        for iteration in iterations
        if (iteration.get("spec") or {}).get("train_sampling") == "sequential"
    }


def anomalies(
    curves: dict[int, list[dict[str, float]]], easy_to_hard: set[int] | frozenset[int] = frozenset()
) -> list[str]:
    """What a practitioner would flag in the curves: gradient spikes, non-finite or rising loss
    (a rise is no anomaly where rows were read easy to hard: the last are the hardest)."""
    found = []
    for iteration, points in sorted(curves.items()):
        norms = [p["grad_norm"] for p in points if math.isfinite(p.get("grad_norm", math.nan))]
        if len(norms) >= 3:
            typical = median(norms)
            for point in points:
                norm = point.get("grad_norm", 0.0)
                if typical > 0 and norm > GRAD_SPIKE_FACTOR * typical:
                    found.append(
                        f"iteration {iteration}: gradient norm {norm:.1f} at step "
                        f"{point['step']:.0f}, {norm / typical:.0f}× the median {typical:.2f}"
                    )
        losses = [p["loss"] for p in points if "loss" in p]
        if any(not math.isfinite(loss) for loss in losses):
            found.append(f"iteration {iteration}: the loss became NaN or infinite")
        finite = [loss for loss in losses if math.isfinite(loss)]
        rising = len(finite) >= 3 and finite[-1] > LOSS_RISE_FACTOR * min(finite) > 0
        if rising and iteration not in easy_to_hard:
            found.append(
                f"iteration {iteration}: loss ended at {finite[-1]:.3f}, above its low of "
                f"{min(finite):.3f}"
            )
    return found


def plot_curves(curves: dict[int, list[dict[str, float]]], path: Path) -> Path | None:
    """Loss, gradient norm and learning rate per step, one line per iteration, in one figure."""
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(10, 3), dpi=110)
    for iteration, points in sorted(curves.items()):
        for axis, key in zip(axes, ("loss", "grad_norm", "learning_rate"), strict=True):
            shown = [(p["step"], p[key]) for p in points if key in p]
            if shown:
                axis.plot(*zip(*shown, strict=True), marker=".", label=f"it{iteration}")
    for axis, title in zip(axes, ("training loss", "gradient norm", "learning rate"), strict=True):
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp)
    plt.close(figure)
    tmp.replace(path)
    return path
